import math

import numpy as np
import pytest

from spira.metrics import aggregate_per_file, binary_metrics, file_loss


def test_per_file_mean_of_window_probabilities():
    files, prob, label = aggregate_per_file(
        np.array([2, 0, 2, 0, 1]), np.array([0.9, 0.2, 0.5, 0.4, 0.6]), np.array([1, 0, 1, 0, 1])
    )
    assert files.tolist() == [0, 1, 2]
    assert prob.tolist() == pytest.approx([0.3, 0.6, 0.7])
    assert label.tolist() == [0, 1, 1]


def test_file_loss_is_the_cross_entropy_of_file_probabilities():
    labels, prob = np.array([1, 0, 1]), np.array([0.8, 0.3, 0.5])
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.5)) / 3
    assert file_loss(labels, prob) == pytest.approx(expected)
    # A certain, wrong file costs a large but finite loss.
    assert 10 < file_loss(np.array([1]), np.array([0.0])) < 20


def test_mixed_labels_within_a_file_are_an_error():
    with pytest.raises(ValueError, match="different labels"):
        aggregate_per_file(np.array([0, 0]), np.array([0.1, 0.2]), np.array([0, 1]))


def test_binary_metrics_values():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.6, 0.4, 0.7, 0.3, 0.2, 0.1, 0.05])
    m = binary_metrics(labels, scores, threshold=0.5)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert m["auroc"] == pytest.approx(13 / 15)
    assert m["n_files"] == 8


def test_one_class_gives_nan_auroc_not_a_crash():
    m = binary_metrics(np.array([0, 0]), np.array([0.2, 0.7]), 0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["sensitivity"])
    assert m["specificity"] == 0.5
