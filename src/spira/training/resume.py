"""Resuming a killed or interrupted training run from its last checkpoint.

Training writes its checkpoints into `models/resume`, a folder outside
DVC's outputs (DVC deletes a stage's outputs before it runs it, so a killed
run's checkpoints there would be gone): `last.ckpt` after every epoch, with
the run's fingerprint, its W&B run id and whether training had decided to
stop. A run resumes from it only when the fingerprint matches its own: the
same params, the same prepared data and features, the same code. Anything
else (no checkpoint, an unreadable or untrusted one, another fingerprint)
starts fresh, and the log says why in one line.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from spira.training.checkpoint import read_checkpoint

# The key of the checkpoint's dict that holds the resume record.
RESUME_RECORD = "spira_resume"
FINGERPRINT_PARTS = ("params", "data", "code")


def params_version(params: Mapping[str, Any]) -> str:
    """sha256 of the resolved params the run reads (for a DVC stage: the keys dvc.yaml declares)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode("utf-8")).hexdigest()


def folders_version(folders: Iterable[str | Path]) -> str:
    """sha256 of every file under `folders`: its path relative to its folder and its bytes."""
    digest = hashlib.sha256()
    for number, folder in enumerate(Path(folder) for folder in folders):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                digest.update(f"{number}/{path.relative_to(folder).as_posix()}\n".encode("utf-8"))
                with path.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def code_version() -> str:
    """sha256 of the source of every spira module this process has imported: the code the run runs."""
    digest = hashlib.sha256()
    for name, module in sorted(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if (name == "spira" or name.startswith("spira.")) and source:
            digest.update(f"{name}\n".encode("utf-8"))
            digest.update(Path(source).read_bytes())
    return digest.hexdigest()


def run_fingerprint(params: Mapping[str, Any], data_folders: Sequence[Path]) -> dict[str, str]:
    """What a resumed run must share with the interrupted one: params (resolved), data (`data_folders`:
    the prepared data and its features) and code. Taken after the model is built, so the model's module counts."""
    return {
        "params": params_version(params),
        "data": folders_version(data_folders),
        "code": code_version(),
    }


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: `checkpoint` None starts fresh, and `reason` says why."""

    checkpoint: Path | None
    reason: str = ""
    epochs_done: int = 0
    wandb_run_id: str | None = None
    # Training had decided to stop (early stopping) when the run was killed.
    stopped: bool = False


def resume_point(last_checkpoint: Path, fingerprint: dict[str, str], allowed_targets: Sequence[str]) -> ResumePoint:
    """Resume from `last_checkpoint` when it holds a run of the same fingerprint; else start fresh, with the reason.

    Read as every checkpoint is (spira.training.checkpoint: tensors and plain data, allowed targets only)."""
    if not last_checkpoint.is_file():
        return ResumePoint(None, f"no interrupted run to resume ({last_checkpoint} does not exist)")
    try:
        checkpoint = read_checkpoint(last_checkpoint, allowed_targets)
    except Exception as error:  # truncated, corrupt, pickled objects or untrusted targets: never resumed
        return ResumePoint(None, f"{last_checkpoint} cannot be resumed: it is unreadable or untrusted ({type(error).__name__})")
    record = checkpoint.get(RESUME_RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), dict):
        return ResumePoint(None, f"{last_checkpoint} carries no fingerprint of its run")
    changed = [part for part in FINGERPRINT_PARTS if record["fingerprint"].get(part) != fingerprint[part]]
    if changed:
        return ResumePoint(None, f"{last_checkpoint} belongs to a run with other {' and '.join(changed)}")
    return ResumePoint(last_checkpoint, "", int(checkpoint.get("epoch", -1)) + 1, record.get("wandb_run_id"), bool(record.get("should_stop")))


class ResumeRecord(L.Callback):
    """Writes the resume record into every checkpoint: the run's fingerprint, its W&B run
    id and whether training has decided to stop. A run resumed from a checkpoint that had
    decided to stop (killed after its last epoch, before the stage ended) stops at once,
    as the uninterrupted run did: Lightning restores no `should_stop`."""

    def __init__(self, fingerprint: dict[str, str], stopped: bool = False):
        self.fingerprint = dict(fingerprint)
        self.stopped = stopped

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.stopped:
            trainer.should_stop = True

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        run_ids = [logger.version for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        checkpoint[RESUME_RECORD] = {
            "fingerprint": self.fingerprint,
            "wandb_run_id": run_ids[0] if run_ids else None,
            "should_stop": bool(trainer.should_stop),
        }
