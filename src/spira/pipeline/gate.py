"""The gate step: score the challenger and the champion on the same test sets, apply the rules, write the result.

The challenger is this workspace's checkpoint (in `models/checkpoints`); the
champion is the registry's `prod` version, its model file read with DVC at its
tag. Both are scored here, in one run, on the featurized clean and noisy test
sets. The gate writes metrics/gate.json and reports/gate.md and changes no tag.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from spira.evaluation.bootstrap import paired_auroc_difference, speaker_bootstrap
from spira.evaluation.evaluate import TEST_SETS, point_metrics, score_split
from spira.evaluation.thresholds import read_decision
from spira.features.store import has_split
from spira.layout import PIPELINE, Layout
from spira.pipeline.model import STAGE_OUTPUTS, write_json
from spira.registry.promotion import GateSettings, decide, floor_rules, gate_markdown, non_inferiority_rule
from spira.registry.versions import RegistryError, current_prod, fetch_artifact
from spira.safety import write_text_atomic
from spira.tracking import data_version, git_commit
from spira.training.checkpoint import load_module
from spira.training.fit import checkpoint_path

GATE_METRICS = Path("metrics/gate.json")
GATE_REPORT = Path("reports/gate.md")


def gate_settings(cfg: DictConfig) -> GateSettings:
    gate = cfg.gate
    return GateSettings(
        floors={str(name): float(limit) for name, limit in gate.floors.items()},
        artifact=str(gate.artifact),
        margin=float(gate.non_inferiority.margin),
        confidence=float(gate.non_inferiority.confidence),
        resamples=int(gate.bootstrap.resamples),
        seed=int(gate.bootstrap.seed),
        statistic=str(gate.statistic),
        min_speakers_per_class=int(gate.min_speakers_per_class),
    )


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def gate_figures(units: pd.DataFrame, threshold: float, gate: GateSettings) -> dict:
    """Point metrics, their speaker bootstrap intervals (`<metric>_ci_low/_ci_high`, the gate's
    resamples, confidence and seed) and the test speakers of each class the figures rest on."""
    figures = point_metrics(units, threshold)
    labels, probabilities, speakers = units["actual"].to_numpy(), units["probability"].to_numpy(), units["speaker_id"].to_numpy()
    for metric, (low, high) in speaker_bootstrap(labels, probabilities, speakers, threshold, gate.resamples, gate.confidence, gate.seed).items():
        if metric in figures:
            figures[f"{metric}_ci_low"], figures[f"{metric}_ci_high"] = round(low, 6), round(high, 6)
    for label, cls in ((1, "patients"), (0, "controls")):
        figures[f"n_{cls}_speakers"] = int(units.loc[units["actual"] == label, "speaker_id"].nunique())
    return figures


def score_model(checkpoint: Path, cfg: DictConfig, features_dir: Path, decision: dict, name: str) -> dict[str, tuple[dict, pd.DataFrame | None]]:
    """Metrics and predictions of one checkpoint on each test set, scored as evaluate scores them
    (evaluation.evaluate.score_split: per file, with the decision's temperature when it was calibrated)."""
    module = load_module(checkpoint, list(cfg.checkpoint.allowed_targets))
    trained_on = dict(module.hparams["features"])
    # Every setting that shapes the windows.
    expected = {key: value for key, value in OmegaConf.to_container(cfg.features, resolve=True).items() if key in trained_on}
    if {key: trained_on[key] for key in expected} != expected:
        changed = sorted(key for key in expected if trained_on[key] != expected[key])
        raise RegistryError(f"the {name} was trained on other features ({', '.join(changed)} differ from params.yaml's features): "
                            "the gate can only score both models on the same feature files")  # fmt: skip
    scores = {}
    for name, split in TEST_SETS.items():
        if not has_split(features_dir, split):
            # No noise recordings, no noisy test set: its floor fails for want of a figure.
            scores[name] = ({"n_files": 0, "status": "not evaluated: no noise recordings"}, None)
            continue
        units = score_split(module, features_dir, split, int(cfg.evaluate.batch_size), decision.get("temperature"))
        scores[name] = (gate_figures(units, float(decision["threshold"]), gate_settings(cfg)), units)
    return scores


def model_figures(scores: dict[str, tuple[dict, pd.DataFrame | None]]) -> dict[str, dict]:
    return {name: metrics for name, (metrics, _) in scores.items()}


def run_gate(cfg: DictConfig, repo: Path = Path("."), layout: Layout = PIPELINE, test_metrics: Path = STAGE_OUTPUTS.test_metrics) -> dict:
    """Decide whether this run's model may replace the one in `prod`; write the decision and its figures."""
    gate = gate_settings(cfg)
    # Both models are judged by the decision evaluate chose for the challenger (its threshold, and
    # its temperature when calibrated): the decision it would ship with.
    decision = read_decision(test_metrics)
    threshold = float(decision["threshold"])
    challenger_checkpoint = checkpoint_path(cfg.callbacks, layout.checkpoints)
    challenger_scores = score_model(challenger_checkpoint, cfg, layout.features, decision, "challenger")
    challenger = {
        "checkpoint_md5": file_md5(challenger_checkpoint),
        "data_version": data_version(layout.prepared, repo / "dvc.lock"),
        "code_commit": git_commit(repo),
        **model_figures(challenger_scores),
    }
    rules = floor_rules(challenger, gate.floors, gate.statistic, gate.min_speakers_per_class)
    champion, non_inferiority = None, None
    version = current_prod(repo, gate.artifact)
    if version is not None:
        with tempfile.TemporaryDirectory() as folder:
            champion_checkpoint = fetch_artifact(repo, gate.artifact, version.tag, Path(folder) / "champion.ckpt")
            champion_scores = score_model(champion_checkpoint, cfg, layout.features, decision, f"champion {version.tag}")
            champion_md5 = file_md5(champion_checkpoint)
        champion = {"version": version.version, "tag": version.tag, "commit": version.commit, "checkpoint_md5": champion_md5,
                    **model_figures(champion_scores)}  # fmt: skip
        ours, theirs = challenger_scores["test_clean"][1], champion_scores["test_clean"][1]
        assert ours["file_id"].tolist() == theirs["file_id"].tolist(), "both models must be scored on the same files"
        difference = paired_auroc_difference(
            ours["actual"].to_numpy(), ours["probability"].to_numpy(), theirs["probability"].to_numpy(), ours["speaker_id"].to_numpy(),
            resamples=gate.resamples, confidence=gate.confidence, seed=gate.seed,
        )  # fmt: skip
        non_inferiority = {**difference.as_dict(), "margin": gate.margin}
        rules.append(non_inferiority_rule(difference.ci_low, gate.margin, gate.confidence))
    result = {
        **decide(rules),
        "threshold": threshold,
        "challenger": challenger,
        "champion": champion,
        "non_inferiority": non_inferiority,
        "config": OmegaConf.to_container(cfg.gate, resolve=True),
    }
    # Each whole or not at all: a killed gate leaves the previous decision, never half of one.
    write_json(repo / GATE_METRICS, result)
    write_text_atomic(repo / GATE_REPORT, gate_markdown(result))
    return result
