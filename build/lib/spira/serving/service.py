"""The HTTP service: POST /predict (multipart upload -> the record `spira predict` writes),
GET /health, GET /model (the contract) and GET /queue (requests in progress).

Every refusal is JSON with a machine-readable `reason` and a one-line `message`:
411 no Content-Length, 413 a body above the upload limit, 415 not multipart/form-data,
400 a malformed multipart body or no `file` field, 408 a body slower than the upload
timeout, 422 audio that cannot be scored (the error record: not_audio, corrupt_audio,
too_long, ...), 503 with Retry-After when `max_queue` requests are already in progress.
The checks on the headers come before any of the body is read.

An upload is written to a private temporary folder only while it is scored
(the decoder's checks read a file) and deleted before the response is sent.
Nothing about an upload is logged: not its name, not its result.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile

from spira.data.validate import AUDIO_EXTENSIONS
from spira.serving.limits import RETRY_AFTER_SECONDS, SCORING_THREADS, ServeLimits
from spira.serving.predict import Predictor

UPLOAD_FIELD = "file"
FORM_TYPE = "multipart/form-data"


def score_upload(predictor: Predictor, upload: BinaryIO, filename: str, max_seconds: float | None = None) -> dict[str, Any]:
    """Score one upload from a temporary file that is gone when this returns."""
    suffix = PurePath(filename).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="spira-upload-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in AUDIO_EXTENSIONS else ''}"
        with open(path, "wb") as copy:
            shutil.copyfileobj(upload, copy)
        return predictor.predict_file(path, filename, max_seconds)


def refusal(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "reason": reason, "message": message}, status_code=status, headers=headers)


def header_refusal(request: Request, limits: ServeLimits) -> JSONResponse | None:
    """What is wrong with a /predict request before its body is read; None when nothing is."""
    length = request.headers.get("content-length")
    if length is None:
        return refusal(411, "length_required", f"send a Content-Length header ({FORM_TYPE} upload, not chunked)")
    if not length.isdigit():
        return refusal(400, "bad_content_length", "the Content-Length header is not a number of bytes")
    if int(length) > limits.max_upload_bytes:
        return refusal(413, "upload_too_large", f"upload of {length} bytes, larger than the {limits.max_upload_bytes} byte limit")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != FORM_TYPE:
        shown = content_type.split(";")[0].strip()[:60] or "none"
        return refusal(415, "not_multipart", f"Content-Type {shown}: send {FORM_TYPE} with the recording in the field {UPLOAD_FIELD!r}")
    return None


class Admission:
    """Counts the /predict requests in progress (all on the event loop's thread: no lock)."""

    def __init__(self, limits: ServeLimits):
        self.limits = limits
        self.in_flight = 0
        self._scorers: anyio.CapacityLimiter | None = None

    @property
    def scorers(self) -> anyio.CapacityLimiter:
        if self._scorers is None:  # made inside the event loop, on first use
            self._scorers = anyio.CapacityLimiter(SCORING_THREADS)
        return self._scorers

    def busy(self) -> JSONResponse:
        return refusal(
            503,
            "server_busy",
            f"{self.in_flight} predictions in progress, the server's limit (--max-queue {self.limits.max_queue}): retry later",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


async def read_form(request: Request, limits: ServeLimits) -> FormData | JSONResponse:
    """The parsed multipart form, or the refusal of a slow, broken or malformed body."""
    try:
        with anyio.fail_after(limits.upload_timeout):
            return await request.form(max_files=1, max_fields=1)
    except TimeoutError:
        return refusal(408, "upload_timeout", f"the upload did not arrive within {limits.upload_timeout:g} s")
    except Exception as error:  # starlette's HTTPException for a bad body, a client that went away, ...
        return refusal(400, "malformed_multipart", f"not a valid {FORM_TYPE} body ({parser_complaint(error)})")


def parser_complaint(error: BaseException) -> str:
    """Starlette's word for a bad body and, when there is one, python-multipart's reason behind it."""
    detail = str(getattr(error, "detail", None) or type(error).__name__)
    cause = error.__cause__ or error.__context__
    while cause is not None and not type(cause).__module__.startswith("python_multipart"):
        cause = cause.__cause__ or cause.__context__
    return f"{detail.rstrip('.')}: {cause}" if cause is not None else detail


def create_app(predictor: Predictor, limits: ServeLimits = ServeLimits()) -> FastAPI:
    app = FastAPI(title="SPIRA pre-screening model", version=predictor.version)
    admission = Admission(limits)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model_version": predictor.version}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return predictor.contract

    @app.get("/queue")
    async def queue() -> dict[str, int]:
        return {"in_flight": admission.in_flight, "max_queue": limits.max_queue, "scoring_threads": SCORING_THREADS}

    async def answer(request: Request) -> JSONResponse:
        refused = header_refusal(request, limits)
        if refused:
            return refused
        form = await read_form(request, limits)
        if isinstance(form, JSONResponse):
            return form
        try:
            upload = form.get(UPLOAD_FIELD)
            if not isinstance(upload, UploadFile):
                complaint = f"no complete file in the form field {UPLOAD_FIELD!r} (none sent, or the body ends before its closing boundary)"
                return refusal(400, "no_file_field", complaint)
            name = upload.filename or "upload"
            record = await anyio.to_thread.run_sync(
                score_upload, predictor, upload.file, name, limits.max_audio_seconds, limiter=admission.scorers
            )  # fmt: skip
        finally:
            await form.close()
        return JSONResponse(record, status_code=200 if record["status"] == "ok" else 422)

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        if admission.in_flight >= limits.max_queue:
            return admission.busy()
        admission.in_flight += 1
        try:
            return await answer(request)
        finally:
            admission.in_flight -= 1

    return app
