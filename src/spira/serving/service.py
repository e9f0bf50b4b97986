"""The HTTP service: POST /predict (multipart upload -> the record `spira predict` writes),
GET /health and GET /model (the contract).

An upload is written to a private temporary folder only while it is scored
(the decoder's checks read a file) and deleted before the response is sent.
Nothing about an upload is logged: not its name, not its result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePath
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from spira.data.validate import AUDIO_EXTENSIONS
from spira.serving.predict import Predictor

UPLOAD_FIELD = "file"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def score_upload(predictor: Predictor, content: bytes, filename: str) -> dict[str, Any]:
    """Score the bytes of one upload from a temporary file that is gone when this returns."""
    suffix = PurePath(filename).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="spira-upload-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in AUDIO_EXTENSIONS else ''}"
        path.write_bytes(content)
        return predictor.predict_file(path, filename)


def create_app(predictor: Predictor, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    app = FastAPI(title="SPIRA pre-screening model", version=predictor.version)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model_version": predictor.version}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return predictor.contract

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        # The declared length bounds the body: the server never reads past it.
        length = request.headers.get("content-length")
        if length is None:
            raise HTTPException(411, "send a Content-Length header (multipart/form-data upload)")
        if not length.isdigit() or int(length) > max_upload_bytes:
            raise HTTPException(413, f"upload larger than {max_upload_bytes} bytes")
        try:
            form = await request.form(max_files=1, max_fields=1)
        except Exception as error:  # malformed multipart bodies raise several types
            raise HTTPException(400, f"not a multipart/form-data upload ({type(error).__name__})") from None
        upload = form.get(UPLOAD_FIELD)
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, f"no file in the form field {UPLOAD_FIELD!r}")
        content = await upload.read()
        await form.close()
        record = await run_in_threadpool(score_upload, predictor, content, upload.filename or "upload")
        return JSONResponse(record, status_code=200 if record["status"] == "ok" else 422)

    return app
