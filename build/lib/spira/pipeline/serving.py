"""Using a trained model: `spira predict`, `spira serve` and `spira models`.

Nothing here imports torch, Lightning, Hydra or DVC: an export folder is all a
prediction needs, and the registry's read side (versions, `prod`, a version's
export) reads git tags and the local DVC cache directly, so all of it runs in
the serving install (`pip install '.[serve]'`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from spira.registry.exports import copy_export
from spira.registry.versions import artifact_name, current_prod, find_version, prod_assignments, versions
from spira.serving.limits import ServeLimits
from spira.serving.predict import Predictor, load_predictor

# `--model prod` / `--model v1.2.0`: a version in the model registry (git tags) rather than a folder.
REGISTRY_NAME = re.compile(r"^(prod|v\d+\.\d+\.\d+)$")


def resolve_model(model: str, repo: Path = Path("."), params_file: Path = Path("params.yaml")) -> Predictor:
    """The predictor of an export folder, or of a registered version of `repo` (`prod`, `vN.N.N`)
    whose export is in the repository's DVC cache. FileNotFoundError / ValueError / RegistryError
    say what is wrong and what fetches it."""
    path = Path(model)
    if REGISTRY_NAME.match(model) and not path.exists():
        version = find_version(repo, artifact_name(repo / params_file), model)
        # The predictor holds everything it needs once loaded: the copy goes when it is.
        with tempfile.TemporaryDirectory(prefix="spira-model-") as folder:
            return load_predictor(copy_export(repo, version, Path(folder)))
    if not path.is_dir():
        raise FileNotFoundError(f"{model}: no such export folder (run `dvc repro export`, or pass --model prod, vN.N.N or a folder)")
    return load_predictor(path)


def predict_files(model: str, audio: list[str], params_file: Path = Path("params.yaml")) -> list[dict[str, Any]]:
    """One record per file, in the order given; a file that cannot be scored gets an error record."""
    predictor = resolve_model(model, params_file=params_file)
    return [predictor.predict_file(path, path) for path in audio]


def serve_model(model: str, host: str, port: int, limits: ServeLimits, params_file: Path = Path("params.yaml")) -> None:
    """Run the HTTP service until interrupted. No access log: request lines are all it would add."""
    import uvicorn

    from spira.serving.service import create_app

    app = create_app(resolve_model(model, params_file=params_file), limits)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")


def model_table(repo: Path, name: str) -> tuple[list[dict], list[tuple[int, str, str, str]]]:
    """One row per version (stage, date, data version, test figures) and the history of `prod`."""
    prod = current_prod(repo, name)
    rows = []
    for version in versions(repo, name):
        record = version.record
        rows.append({
            "version": version.version,
            "stage": "prod" if prod and prod.version == version.version else "",
            "date": version.created[:16].replace("T", " "),
            "data": str(record.get("data_version"))[:8],
            "auroc": record.get("test_clean", {}).get("auroc"),
            "sensitivity": record.get("test_clean", {}).get("sensitivity"),
            "noisy_auroc": record.get("test_noisy", {}).get("auroc"),
            "threshold": record.get("threshold"),
            "gate": "forced" if record.get("forced") else record.get("gate"),
        })  # fmt: skip
    return rows, prod_assignments(repo, name)
