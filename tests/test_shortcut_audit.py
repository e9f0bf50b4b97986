"""The shortcut audit flags a planted confound, leaves a balanced control alone, and measures the noise floor."""

import json

import numpy as np
import pandas as pd
import pytest

from spira.audit.shortcuts import audit_shortcuts, nuisance_table, signal_properties


def _cohort(seed: int = 0):
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(40), 3)
    labels = (speakers % 2).astype(int)
    table = pd.DataFrame(
        {
            # Planted: patients were recorded in a noisier room.
            "noise_floor": -60 + 12 * labels + rng.normal(0, 3, labels.size),
            # Balanced controls: the same for both classes.
            "duration": rng.uniform(3, 9, labels.size),
            "sample_rate": rng.choice([16000, 44100], labels.size),
            "source": ["hospital"] * labels.size,
        }
    )
    return table, labels, speakers.astype(str)


def test_a_planted_confound_is_flagged_and_balanced_properties_are_not():
    table, labels, speakers = _cohort()
    result = audit_shortcuts(table, labels, speakers, warn_auroc=0.7, folds=5, seed=0)
    assert result["properties"]["noise_floor"]["auroc"] >= 0.95 and result["properties"]["noise_floor"]["flagged"]
    assert abs(result["properties"]["duration"]["auroc"] - 0.5) < 0.2 and not result["properties"]["duration"]["flagged"]
    assert abs(result["properties"]["sample_rate"]["auroc"] - 0.5) < 0.2 and not result["properties"]["sample_rate"]["flagged"]
    # One source for everyone: nothing to learn from, said as such rather than as 0.5.
    assert result["properties"]["source"] == {"auroc": None, "flagged": False}
    assert result["combined"]["flagged"] and result["flagged"] == ["noise_floor", "combined"]
    assert result["files"] == 120


def test_without_the_confound_nothing_is_flagged():
    table, labels, speakers = _cohort(seed=1)
    table = table.drop(columns="noise_floor")
    result = audit_shortcuts(table, labels, speakers, warn_auroc=0.7, folds=5, seed=0)
    assert result["flagged"] == []


def _manifest(formats: list[str]) -> pd.DataFrame:
    """A prepared manifest of 40 files (20 speakers, two files each) with the given source formats."""
    return pd.DataFrame(
        {
            "label": [(i // 2) % 2 for i in range(40)],
            "speaker_id": [f"s{i // 2}" for i in range(40)],
            "source_id": ["hospital"] * 40,
            "source_sample_rate": [16000, 44100] * 20,
            "source_channels": [1] * 40,
            "source_format": formats,
            "duration_seconds": np.linspace(2, 6, 40),
        }
    )


def _recordings(count: int):
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(1600), 16000) for _ in range(count)]


def test_the_file_format_is_an_audited_property_and_one_format_everywhere_is_said_to_be_constant():
    # Patients uploaded MP3, controls were recorded as WAV: the format alone gives the label away.
    manifest = _manifest(["MP3" if (i // 2) % 2 else "WAV" for i in range(40)])
    table = nuisance_table(manifest, _recordings(40))
    assert list(table.columns[:5]) == ["source", "sample_rate", "channels", "format", "duration"]
    result = audit_shortcuts(table, manifest["label"].to_numpy(), manifest["speaker_id"].to_numpy(), warn_auroc=0.7, folds=5, seed=0)
    assert result["properties"]["format"] == {"auroc": 1.0, "flagged": True}
    assert "format" in result["flagged"]

    # The demo writes WAV only: nothing to learn from the format, said as such.
    demo = _manifest(["WAV"] * 40)
    result = audit_shortcuts(nuisance_table(demo, _recordings(40)), demo["label"].to_numpy(), demo["speaker_id"].to_numpy(), 0.7, 5, 0)
    assert result["properties"]["format"] == {"auroc": None, "flagged": False}
    assert "format" not in result["flagged"]


def test_signal_properties_on_a_known_signal():
    rate = 16000
    rng = np.random.default_rng(0)
    pause = 0.001 * np.sign(rng.standard_normal(rate))  # RMS 1e-3: -60 dB
    tone = np.sin(2 * np.pi * 200 * np.arange(rate) / rate)  # RMS 1/sqrt(2): -3 dB
    properties = signal_properties(np.concatenate([pause, tone]), rate)
    assert properties["noise_floor"] == pytest.approx(-60.0, abs=0.01)
    assert properties["loudness"] == pytest.approx(10 * np.log10((1e-6 + 0.5) / 2), abs=0.01)
    clipped = np.clip(tone * 2, -1, 1)
    assert signal_properties(clipped, rate)["clipping"] > 0.5 > signal_properties(tone, rate)["clipping"]


def test_the_committed_demo_run_flags_the_confounds_its_cohort_was_built_with():
    """The committed run's record (metrics/audit.json, params.yaml): the demo cohort puts more patients at
    some sites (site_confound) and ward noise mostly behind patients; the audit flags both, and the file
    format, drawn regardless of the label, not."""
    from conftest import REPO_ROOT
    from spira.config import load_params

    cohort = load_params(REPO_ROOT / "params.yaml").demo_cohort
    assert cohort.site_confound > 0 and cohort.ward_background_patients > cohort.ward_background_controls
    audit = json.loads((REPO_ROOT / "metrics/audit.json").read_text())
    assert {"source", "noise_floor"} <= set(audit["flagged"]) and "format" not in audit["flagged"]
    assert audit["properties"]["noise_floor"]["auroc"] > audit["warn_auroc"] and audit["properties"]["source"]["auroc"] > audit["warn_auroc"]
