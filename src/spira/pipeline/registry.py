"""The registry commands: promote the workspace model, roll back `prod`, list the versions.

Promotion writes tags, so it is a command after `dvc repro`, not a stage. It
trusts only what is committed: the gate result in HEAD, and HEAD's dvc.lock
proving that this result was computed from HEAD's model and data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from spira.config import compose_config
from spira.layout import PIPELINE
from spira.pipeline.gate import GATE_METRICS
from spira.registry.versions import (
    ModelVersion,
    RegistryError,
    assign_prod,
    current_prod,
    git,
    prod_assignments,
    register_and_assign_prod,
    versions,
)

RECORD_METRICS = ("auroc", "sensitivity", "specificity", "balanced_accuracy", "n_files")


def committed_file(repo: Path, path: Path | str) -> bytes | None:
    try:
        return git(repo, "show", f"HEAD:{Path(path).as_posix()}").encode()
    except RegistryError:
        return None


def lock_entry(lock: dict, stage: str, kind: str, path: str) -> str | None:
    """The md5 dvc.lock records for `path` among a stage's deps or outs."""
    for item in lock.get("stages", {}).get(stage, {}).get(kind, []):
        if Path(item["path"]) == Path(path):
            return item.get("md5")
    return None


def checked_gate_result(repo: Path, params: DictConfig) -> dict:
    """HEAD's gate result, after checking it judged HEAD's model and data against today's `prod`."""
    committed = committed_file(repo, GATE_METRICS)
    if committed is None:
        raise RegistryError(f"no gate result committed at HEAD: run `dvc repro` (the gate stage writes {GATE_METRICS}), "
                            f"commit dvc.lock and {GATE_METRICS}, then promote")  # fmt: skip
    workspace = repo / GATE_METRICS
    if not workspace.is_file() or workspace.read_bytes() != committed:
        raise RegistryError(f"{GATE_METRICS} differs from the committed one: commit it (or restore it) before promoting")
    lock = yaml.safe_load(committed_file(repo, "dvc.lock") or b"") or {}
    if lock_entry(lock, "gate", "outs", str(GATE_METRICS)) != hashlib.md5(committed).hexdigest():
        raise RegistryError(f"stale gate: the committed {GATE_METRICS} is not the one HEAD's dvc.lock records "
                            "(another commit's result); run `dvc repro`, commit, then promote")  # fmt: skip
    checkpoints = str(PIPELINE.checkpoints)
    if lock_entry(lock, "gate", "deps", checkpoints) != lock_entry(lock, "train", "outs", checkpoints):
        raise RegistryError("stale gate: it judged another model than the one HEAD's dvc.lock records; run `dvc repro`, commit, then promote")
    result = json.loads(committed)
    data = lock_entry(lock, "prepare", "outs", str(PIPELINE.prepared))
    if result["challenger"]["data_version"] != data:
        raise RegistryError(f"stale gate: it ran on data version {result['challenger']['data_version']}, HEAD has {data}; "
                            "run `dvc repro`, commit, then promote")  # fmt: skip
    prod = current_prod(repo, str(params.gate.artifact))
    judged = (result["champion"] or {}).get("version")
    if (prod.version if prod else None) != judged:
        raise RegistryError(f"stale gate: prod is {prod.version if prod else 'empty'} now, the gate judged against "
                            f"{judged or 'no champion'}; run `dvc repro -f gate`, commit, then promote")  # fmt: skip
    return result


def failed_rules_text(result: dict) -> str:
    return "; ".join(f"{r['rule']} ({r['explanation']}: {r['value']} vs limit {r['limit']})" for r in result["rules"] if not r["passed"])


def changed_params(repo: Path, params: DictConfig) -> dict:
    """The params that differ from the defaults of conf/, as dotted keys."""
    defaults = flatten(OmegaConf.to_container(compose_config(config_dir=(repo / "conf").resolve()), resolve=True))
    current = flatten(OmegaConf.to_container(params, resolve=True))
    return {key: value for key, value in current.items() if defaults.get(key) != value}


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def version_record(repo: Path, params: DictConfig, result: dict | None, forced_reason: str | None) -> dict:
    """What a version's tag records: code, data, changed params, test figures, threshold, how it got in."""
    lock = yaml.safe_load(committed_file(repo, "dvc.lock") or b"") or {}
    if result is None:
        test = json.loads((repo / "metrics/test.json").read_text()) if (repo / "metrics/test.json").is_file() else {}
        figures, threshold = test, float(params.evaluate.threshold)
    else:
        figures, threshold = result["challenger"], result["threshold"]
    return {
        "commit": git(repo, "rev-parse", "HEAD").strip(),
        "data_version": lock_entry(lock, "prepare", "outs", str(PIPELINE.prepared)),
        "params_changed": changed_params(repo, params),
        "test_clean": {name: figures.get("test_clean", {}).get(name) for name in RECORD_METRICS},
        "test_noisy": {name: figures.get("test_noisy", {}).get(name) for name in RECORD_METRICS},
        "threshold": threshold,
        "gate": result["decision"] if result else "none",
        "forced": forced_reason,
    }


def model_in_prod(repo: Path, params: DictConfig) -> ModelVersion | None:
    """The prod version when HEAD's dvc.lock records the same model as prod's commit (nothing to promote)."""
    prod = current_prod(repo, str(params.gate.artifact))
    if prod is None:
        return None
    checkpoints = str(PIPELINE.checkpoints)
    models = set()
    for rev in ("HEAD", prod.commit):
        try:
            models.add(lock_entry(yaml.safe_load(git(repo, "show", f"{rev}:dvc.lock")) or {}, "train", "outs", checkpoints))
        except RegistryError:  # no dvc.lock at that commit
            return None
    return prod if len(models) == 1 and None not in models else None


def promote(repo: Path, params: DictConfig, force: bool = False, reason: str | None = None) -> tuple[ModelVersion, bool]:
    """Register HEAD's model and assign it `prod` when its committed gate result passes (or forced, with a reason).

    Returns the version in prod and whether this call put it there (False: HEAD's model already is prod's)."""
    name = str(params.gate.artifact)
    for path in (Path("dvc.lock"), GATE_METRICS):
        committed, workspace = committed_file(repo, path), repo / path
        if workspace.is_file() and workspace.read_bytes() != committed and not force:
            raise RegistryError(f"{path} differs from the committed one: commit the run (dvc.lock, {GATE_METRICS}) before promoting")
    in_prod = model_in_prod(repo, params)
    if in_prod is not None:
        return in_prod, False
    if force:
        if not reason:
            raise RegistryError("--force needs --reason TEXT: the reason is recorded in the tag")
        try:
            result = checked_gate_result(repo, params)
        except RegistryError:
            result = json.loads((repo / GATE_METRICS).read_text()) if (repo / GATE_METRICS).is_file() else None
        message = f"promote (forced): {reason}"
    else:
        result = checked_gate_result(repo, params)
        if result["decision"] != "pass":
            raise RegistryError(f"the gate refused this model ({result['decision']}): {failed_rules_text(result)}. "
                                "Fix the data or the model, or override with --force --reason TEXT")  # fmt: skip
        message = "promote: gate passed" + (f" against {result['champion']['version']}" if result["champion"] else " (floors only, no champion)")
    return register_and_assign_prod(repo, name, version_record(repo, params, result, reason if force else None), message), True


def rollback(repo: Path, name: str, reason: str) -> tuple[str, str]:
    """Assign `prod` to the latest earlier version that was in prod before; returns (from, to)."""
    if not reason:
        raise RegistryError("rollback needs --reason TEXT: the reason is recorded in the tag")
    prod = current_prod(repo, name)
    if prod is None:
        raise RegistryError(f"nothing to roll back: no version of {name} is in prod")
    key = [v.version for v in versions(repo, name)].index
    earlier = {version for _, version, _, _ in prod_assignments(repo, name) if version != "?" and key(version) < key(prod.version)}
    if not earlier:
        raise RegistryError(f"nothing to roll back to: {prod.version} is the earliest version of {name} that was ever in prod")
    target = max(earlier, key=key)
    assign_prod(repo, name, target, f"rollback from {prod.version} to {target}: {reason}")
    return prod.version, target
