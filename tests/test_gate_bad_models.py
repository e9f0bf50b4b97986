"""The default gate refuses bad models: a label-flipped one, an untrained one and one that reads only the noise.

Each model is a real torch module scored by the gate's own path (score_split, the
threshold rule on validation, gate_figures, floor_rules, decide) with the default
`gate` config, on a demo cohort of 80 speakers generated, prepared and featurized here.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from conftest import PipelineRun
from spira.config import compose_config
from spira.data.prepare import prepare_dataset
from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.evaluation.evaluate import TEST_SETS, score_split
from spira.evaluation.thresholds import choose_threshold
from spira.features.featurize import featurize
from spira.pipeline.data import prepare_settings
from spira.pipeline.features import featurize_settings
from spira.pipeline.gate import gate_figures, gate_settings
from spira.pipeline.training_run import fit_settings
from spira.registry.promotion import decide, floor_rules
from spira.training.checkpoint import load_module
from spira.training.fit import build_module, checkpoint_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Features of an 80-speaker demo cohort (default knobs, one short recording each)."""
    root = tmp_path_factory.mktemp("gate-cohort")
    cfg = compose_config()
    knobs = OmegaConf.to_container(cfg.demo_cohort, resolve=True) | {
        "n_speakers": 80, "utterances_per_speaker": 1, "min_seconds": 4.0, "max_seconds": 5.0, "n_noise_files": 7, "noise_seconds": 6.0}  # fmt: skip
    generate_demo_cohort(root / "demo", DemoCohortConfig(**knobs))
    data = compose_config([f"data.root={root / 'demo'}", f"data.noise_root={root / 'demo'}"]).data
    prepare_dataset(prepare_settings(data), root / "prepared", root / "quarantine")
    featurize(featurize_settings(cfg), root / "prepared", root / "features", {})
    return root / "features"


class Negated(torch.nn.Module):
    """A model's logits with the sign flipped: what training on swapped labels converges to."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return -self.model(windows)


class NoiseFloor(torch.nn.Module):
    """Reads only the background: the level of a window's quietest frames (MFCC c0, 10th
    percentile over frames), with the sign that ranks the train split best. The ward-noise
    shortcut and nothing else."""

    def __init__(self, sign: float = 1.0):
        super().__init__()
        self.sign = sign

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.sign * torch.quantile(windows[:, :, 0], 0.1, dim=1) / 10.0

    @classmethod
    def fitted(cls, features: Path) -> NoiseFloor:
        train = score_split(cls(), features, "train", 64)
        return cls(1.0 if roc_auc_score(train["actual"], train["probability"]) >= 0.5 else -1.0)


def gate_decision(module: torch.nn.Module, features: Path) -> dict:
    """The gate's decision on `module` with the default gate config and evaluate's threshold rule on `val`."""
    cfg = compose_config()
    validation = score_split(module, features, "val", 64)
    threshold = choose_threshold(str(cfg.evaluate.threshold), validation["actual"].to_numpy(), validation["probability"].to_numpy()).threshold
    gate = gate_settings(cfg)
    figures = {name: gate_figures(score_split(module, features, split, 64), threshold, gate) for name, split in TEST_SETS.items()}
    return decide(floor_rules(figures, gate.floors, gate.statistic, gate.min_speakers_per_class)) | {"figures": figures}


def test_the_test_cohort_has_the_speakers_the_gate_needs(cohort: Path):
    figures = gate_decision(NoiseFloor(), cohort)["figures"]["test_clean"]
    assert min(figures["n_patients_speakers"], figures["n_controls_speakers"]) >= gate_settings(compose_config()).min_speakers_per_class


def test_an_untrained_model_is_refused(cohort: Path):
    L.seed_everything(0)
    untrained = build_module(fit_settings(compose_config()), cohort)
    result = gate_decision(untrained, cohort)
    assert result["decision"] == "fail" and "floor test_auroc" in result["failed_rules"]


def test_a_label_flipped_model_is_refused(smoke_pipeline: PipelineRun, cohort: Path):
    cfg = compose_config()
    trained = load_module(checkpoint_path(cfg.callbacks, smoke_pipeline.repo / "models/checkpoints"), list(cfg.checkpoint.allowed_targets))
    flipped = gate_decision(Negated(trained), cohort)
    assert flipped["decision"] == "fail" and "floor test_auroc" in flipped["failed_rules"]
    # The same network unflipped ranks the clean test the other way round.
    straight = gate_decision(trained, cohort)["figures"]["test_clean"]["auroc"]
    assert flipped["figures"]["test_clean"]["auroc"] == pytest.approx(1 - straight, abs=1e-6)


def test_a_model_that_reads_only_the_noise_is_refused(cohort: Path):
    model = NoiseFloor.fitted(cohort)
    result = gate_decision(model, cohort)
    # The background level alone ranks the clean test no better than chance by the gate's margin.
    assert result["decision"] == "fail" and "floor test_auroc" in result["failed_rules"]
    train = score_split(model, cohort, "train", 64)
    assert roc_auc_score(train["actual"], train["probability"]) >= 0.5  # it is fitted: the sign that ranks train best
