"""Calibration: hand-computed softmax, ECE and conformal thresholds; coverage holds."""
import numpy as np
import pytest
from softmaint_core.calibration import (conformal_threshold, expected_calibration_error,
                                        prediction_set, softmax)


def test_softmax_with_temperature_matches_hand_values():
    p = softmax(np.array([0.0, np.log(3.0)]))
    assert p == pytest.approx([0.25, 0.75])
    p = softmax(np.array([0.0, np.log(3.0)]), temperature=2.0)  # 1 : sqrt(3)
    assert p == pytest.approx([1 / (1 + 3 ** 0.5), 3 ** 0.5 / (1 + 3 ** 0.5)])


def test_ece_hand_computed():
    # Two bins: confidence 0.9 (right) and 0.6 (wrong) -> 0.5 * 0.1 + 0.5 * 0.6 = 0.35.
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(0.35)


def test_conformal_threshold_is_the_finite_sample_quantile():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 0])  # scores 0.1, 0.2, 0.4, 0.7
    # alpha = 0.5: q-hat is the ceil(5 * 0.5) = 3rd smallest score
    assert conformal_threshold(probs, labels, 0.5) == pytest.approx(0.4)
    # alpha too small for 4 windows: everything is in the set.
    assert conformal_threshold(probs, labels, 0.01) == 1.0


def test_prediction_set_never_empty_and_coverage_holds():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 2
    probs = softmax(logits)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    q = conformal_threshold(probs[:2000], labels[:2000], alpha=0.1)
    sets = prediction_set(probs[2000:], q)
    coverage = sets[np.arange(2000), labels[2000:]].mean()
    assert 0.88 <= coverage <= 0.93
    assert sets.sum(axis=1).min() >= 1
    assert prediction_set(np.array([0.5, 0.3, 0.2]), threshold=0.0).tolist() == [
        True, False, False]
