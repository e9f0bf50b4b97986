"""SPIRA's central finding, reproduced end to end on a small demo cohort.

Patients carry ward noise, controls do not (the `spira_confound` cohort). Trained on the raw audio
(`augment=none`), the model leans on the ward: adding one ward-noise clip to
each control of the test set (the noisy test) costs it far more accuracy than
it costs the default model, which was trained with ward noise inserted into
both classes (`augment=spira_noise`, the default).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_pipeline_repo, run

pytestmark = pytest.mark.slow

# Big enough for the effect to show on the test split, small enough for a few minutes; 10
# noise recordings, so that training (6), validation (2) and the noisy test (2) each get several.
# SPIRA's confound at full strength (conf/demo_cohort/spira_confound.yaml): the default
# demo cohort puts ward noise behind most patients and some controls, where it teaches less.
COHORT = ("-S", "demo_cohort=spira_confound", "-S", "demo_cohort.n_speakers=40", "-S", "demo_cohort.utterances_per_speaker=3",
          "-S", "demo_cohort.min_seconds=6.0", "-S", "demo_cohort.max_seconds=8.0",
          "-S", "demo_cohort.n_noise_files=10", "-S", "trainer.max_epochs=8",
          "-S", "train.warmup_steps=60",
          # A fixed 0.5 threshold and selection on clean validation audio, as SPIRA,
          # so the collapse is the model's, not masked by a threshold fitted on noisy validation.
          "-S", "evaluate.threshold=0.5", "-S", "train.validation_sets=[val]")


def test_without_noise_insertion_the_noisy_test_collapses(tmp_path: Path):
    repo = make_pipeline_repo(tmp_path / "repo")
    results = {}
    # The default insertion (augment.ward_noise.probability 0.5, chosen on validation: at SPIRA's
    # 1.0 training hardly learns the voice of this cohort in 8 epochs).
    overrides = {"spira_noise": [], "none": []}
    for augment, extra in overrides.items():
        run(["dvc", "exp", "run", *COHORT, "-S", f"augment={augment}", *extra], repo)
        results[augment] = json.loads((repo / "metrics/test.json").read_text())

    default, raw = results["spira_noise"], results["none"]
    assert default["test_noisy"]["n_files"] == raw["test_noisy"]["n_files"] >= 18
    # Without insertion: fine on clean audio, far worse once the controls carry ward noise.
    assert raw["test_clean"]["accuracy"] >= 0.8
    assert raw["test_clean"]["accuracy"] - raw["test_noisy"]["accuracy"] >= 0.2
    # With insertion the noisy test holds up, and beats the raw model on it by at least two files.
    assert default["test_noisy"]["accuracy"] >= raw["test_noisy"]["accuracy"] + 2 / default["test_noisy"]["n_files"] - 1e-6
    # It holds up: noise on the controls costs the default model at most one file of accuracy.
    assert default["test_clean"]["accuracy"] - default["test_noisy"]["accuracy"] <= 1 / default["test_noisy"]["n_files"] + 1e-6
