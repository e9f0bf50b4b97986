"""The classical baseline's parts: openSMILE's eGeMAPSv02 functionals of real demo audio, and the
choice of C by speaker-grouped cross-validation on the train split."""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spira.config import compose_config
from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.errors import UserError
from spira.features.egemaps import NUM_FUNCTIONALS, EgemapsExtractor, OpenSmileMissingError
from spira.features.frontend import build_numpy_extractor
from spira.features.mfcc import build_extractor
from spira.features.windows import WholeFileSpec, window_spec
from spira.training.logistic_fit import LogisticFitSettings, choose_c


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[np.ndarray]:
    root = tmp_path_factory.mktemp("demo")
    config = DemoCohortConfig(
        n_speakers=6, utterances_per_speaker=1, min_seconds=3.0, max_seconds=5.0, sample_rates=(16000,),
        stereo_fraction=0.0, flac_fraction=0.0, n_noise_files=1, noise_seconds=2.0, num_workers=0,
    )  # fmt: skip
    generate_demo_cohort(root, config)
    return [sf.read(path, dtype="float32")[0] for path in sorted(root.rglob("*.wav")) if "noise" not in path.parts]


def test_a_recording_is_one_window_of_88_functionals_the_same_in_featurize_and_serving(recordings):
    features = compose_config(["model=egemaps_logreg", "features=egemaps"]).features
    spec = window_spec(features)
    assert isinstance(spec, WholeFileSpec) and spec.frames == 1 and spec.count(123_456) == 1
    train_side, serve_side = build_extractor(features), build_numpy_extractor(features)
    for samples in recordings:
        windows, padded = train_side.file_windows(samples, spec)
        assert windows.shape == (1, 1, NUM_FUNCTIONALS) and windows.dtype == np.float32 and padded == 0
        assert np.isfinite(windows).all() and np.abs(windows).max() > 0
        # Serving computes the same bytes (the same openSMILE, the same float32 input).
        assert np.array_equal(serve_side.file_windows(samples, spec)[0], windows)
    # Different voices, different functionals.
    first, second = (train_side.file_windows(samples, spec)[0][0, 0] for samples in recordings[:2])
    assert not np.allclose(first, second)


def test_the_extractor_travels_to_worker_processes_without_its_opensmile_instance(recordings):
    extractor = EgemapsExtractor(16000)
    expected = extractor.functionals(recordings[0])
    copy = pickle.loads(pickle.dumps(extractor))
    assert copy._smile is None and np.array_equal(copy.functionals(recordings[0]), expected)


def test_without_the_extra_the_error_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_opensmile(name, *args, **kwargs):
        if name == "opensmile":
            raise ImportError("No module named 'opensmile'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_opensmile)
    with pytest.raises(OpenSmileMissingError, match=r"features=egemaps needs openSMILE: pip install -e '\.\[opensmile\]'"):
        EgemapsExtractor(16000).functionals(np.zeros(16000, np.float32))


def speakers_data(seed: int, signal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 speakers (10 per class), 3 files each; feature 0 carries the label with strength `signal`."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"s{i:02d}" for i in range(20)], 3)
    y = np.repeat(np.arange(20) % 2, 3)
    x = rng.normal(size=(60, 5))
    x[:, 0] += signal * (2 * y - 1)
    return x, y, speakers


def test_c_is_chosen_by_out_of_fold_auroc_with_ties_to_the_smaller_c():
    x, y, speakers = speakers_data(0, signal=1.0)
    fit = LogisticFitSettings(c_grid=(10.0, 0.01, 1.0), cv_folds=5, max_iter=1000)
    choice = choose_c(x, y, speakers, fit, seed=0)
    assert list(choice.grid) == [0.01, 1.0, 10.0] and choice.folds == 5
    assert choice.auroc == max(choice.grid.values()) > 0.8
    assert choice.c == min(c for c, auroc in choice.grid.items() if auroc == choice.auroc)
    # Only one feature carries the signal and it ranks the files alike at every C: a tie, won by the smallest.
    separable = x.copy()
    separable[:, 1:] = 0.0
    assert choose_c(separable, y, speakers, fit, seed=0).c == 0.01


def test_choosing_c_needs_two_speakers_of_each_class():
    x, y, speakers = speakers_data(0, signal=1.0)
    keep = (y == 0) | (speakers == "s01")
    with pytest.raises(UserError, match="1 patient and 10 control speakers: choosing C needs at least 2 of each"):
        choose_c(x[keep], y[keep], speakers[keep], LogisticFitSettings(c_grid=(1.0,), cv_folds=5, max_iter=100), seed=0)


def write_features(folder: Path, x: np.ndarray, y: np.ndarray, speakers: np.ndarray, split: str) -> None:
    """featurize's output format for whole-file features: (files, 1, features) and one index row per file."""
    import pandas as pd

    from spira.features.store import FEATURES_FILE, INDEX_COLUMNS, INDEX_FILE

    np.save(folder / FEATURES_FILE.format(split=split), x[:, None, :].astype(np.float32))
    rows = [(f"{split}{n:04x}", 0, 0.0, 0.0, int(label), speaker) for n, (label, speaker) in enumerate(zip(y, speakers))]
    pd.DataFrame.from_records(rows, columns=INDEX_COLUMNS).to_csv(folder / INDEX_FILE.format(split=split), index=False)


def test_the_fit_separates_a_separable_train_split_and_saves_a_checkpoint_the_pipeline_loads(tmp_path: Path):
    import json

    import torch

    from spira.pipeline.training_run import fit_settings
    from spira.training.checkpoint import load_module
    from spira.training.fit import build_module
    from spira.training.logistic_fit import fit_logistic

    x, y, speakers = speakers_data(0, signal=4.0)
    x = np.concatenate([x, np.zeros((60, NUM_FUNCTIONALS - 5))], axis=1) * 3.0 + 10.0  # 88 functionals, not standardised
    for split in ("train", "val"):
        write_features(tmp_path, x, y, speakers, split)
    (tmp_path / "normalization.json").write_text(json.dumps({"mean": x.mean(axis=0).tolist(), "std": np.maximum(x.std(axis=0), 1e-6).tolist()}))
    settings = fit_settings(compose_config(["model=egemaps_logreg", "features=egemaps"]))
    assert "fit" not in settings.model and settings.logistic_fit.cv_folds == 5
    module = build_module(settings, tmp_path)
    checkpoint = tmp_path / "checkpoints" / "best.ckpt"
    summary = fit_logistic(module, settings.logistic_fit, tmp_path, checkpoint, seed=0, loggers=[], validation_sets=("val",))
    assert summary["parameters"] == 89 and summary["fit"]["C"] in settings.logistic_fit.c_grid and len(summary["fit"]["cv_grid"]) == 9
    assert summary["val/file_auroc"] == 1.0 and summary["val/file_accuracy"] == 1.0
    # The saved checkpoint is an ordinary one: load_module rebuilds it and gives the fitted logits.
    loaded = load_module(checkpoint, ["spira.models.", "torch.optim."])
    with torch.no_grad():
        logits = loaded(torch.from_numpy(x[:, None, :].astype(np.float32))).numpy()
    assert ((logits > 0) == (y == 1)).all()
