"""Using an exported model: `spira predict` and `spira serve`.

Nothing here imports Lightning or the training code: an export folder is all
a prediction needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from spira.serving.predict import Predictor, load_predictor

# `--model prod` / `--model v1.2.0` name versions in the model registry, which this version of spira does not have yet.
REGISTRY_NAME = re.compile(r"^(prod|staging|v\d+\.\d+\.\d+)$")


def resolve_model(model: str) -> Predictor:
    """The predictor of an export folder; FileNotFoundError / ValueError say what is wrong."""
    path = Path(model)
    if not path.exists() and REGISTRY_NAME.match(model):
        raise FileNotFoundError(f"{model!r} names a registry version, and there is no model registry yet: pass an export folder (e.g. models/export)")
    if not path.is_dir():
        raise FileNotFoundError(f"{model}: no such export folder (run `dvc repro export` or pass --model PATH)")
    return load_predictor(path)


def predict_files(model: str, audio: list[str]) -> list[dict[str, Any]]:
    """One record per file, in the order given; a file that cannot be scored gets an error record."""
    predictor = resolve_model(model)
    return [predictor.predict_file(path, path) for path in audio]


def serve_model(model: str, host: str, port: int, max_upload_bytes: int) -> None:
    """Run the HTTP service until interrupted. No access log: request lines are all it would add."""
    import uvicorn

    from spira.serving.service import create_app

    app = create_app(resolve_model(model), max_upload_bytes)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
