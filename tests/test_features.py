import numpy as np
import pytest
import torch

from spira.config import compose_config
from spira.features.mfcc import build_extractor
from spira.features.windows import WindowSpec, cut_windows, window_spec


@pytest.fixture(scope="module")
def features():
    return compose_config().features


def test_spira_window_is_401_frames_of_40_coefficients(features):
    spec = window_spec(features)
    assert (spec.window_samples, spec.step_samples, spec.frames) == (64000, 16000, 401)
    windows, padded = cut_windows(np.zeros(16000 * 4, np.float32), spec)
    out = build_extractor(features)(torch.from_numpy(windows))
    assert tuple(out.shape) == (1, 401, 40)
    assert padded == 0


@pytest.mark.parametrize(("seconds", "expected"), [(4.0, 1), (4.99, 1), (5.0, 2), (9.5, 6), (12.0, 9)])
def test_window_count_4s_windows_1s_step(features, seconds, expected):
    spec = window_spec(features)
    samples = np.arange(int(seconds * 16000), dtype=np.float32)
    windows, padded = cut_windows(samples, spec)
    assert spec.count(samples.size) == expected == windows.shape[0]
    # Window k starts k seconds in.
    assert windows[-1, 0] == (expected - 1) * 16000
    assert padded == 0


def test_short_file_is_padded_and_padding_reported(features):
    spec = window_spec(features)
    windows, padded = cut_windows(np.ones(16000 * 3, np.float32), spec)
    assert windows.shape == (1, 64000)
    assert padded == 16000
    assert windows[0, :48000].min() == 1.0 and windows[0, 48000:].max() == 0.0


def test_features_of_a_window_do_not_depend_on_its_batch(features):
    extractor = build_extractor(features)
    rng = np.random.default_rng(0)
    quiet = rng.normal(0, 0.001, 64000).astype(np.float32)
    loud = rng.normal(0, 1.0, 64000).astype(np.float32)
    alone = extractor(torch.from_numpy(quiet[None]))
    batched = extractor(torch.from_numpy(np.stack([quiet, loud])))
    torch.testing.assert_close(alone[0], batched[0])


def test_other_hop_changes_frame_count():
    assert WindowSpec(sample_rate=16000, window_seconds=4.0, step_seconds=1.0, hop_length=320).frames == 201
