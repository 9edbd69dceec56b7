"""Calibration: hand-computed softmax, ECE and conformal thresholds; coverage holds."""
import numpy as np
import pytest
from softmaint_core.calibration import (add_likely_damage, class_conditional_thresholds,
                                        conformal_floor, conformal_min_windows,
                                        conformal_threshold, expected_calibration_error,
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


def test_class_conditional_thresholds_are_each_class_quantile():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7],
                      [0.1, 0.9], [0.5, 0.5]])
    labels = np.array([0, 0, 0, 0, 1, 1])    # class 0 scores 0.1 0.2 0.4 0.7; class 1 0.1 0.5
    q = class_conditional_thresholds(probs, labels, 0.5)
    assert q.tolist() == pytest.approx([0.4, 0.5])   # 3rd of 4; ceil(3 * 0.5) = 2nd of 2
    # a class without calibration windows is in every set
    assert class_conditional_thresholds(probs[:4], labels[:4], 0.5).tolist() == \
        pytest.approx([0.4, 1.0])
    with pytest.raises(ValueError, match='at least one window'):
        class_conditional_thresholds(probs[:0], labels[:0], 0.5)


def test_class_conditional_sets_cover_a_hard_class_that_marginal_sets_miss():
    # Class 2 is rare and the model gives it low probability: marginal sets cover it far
    # less than 90 %, Mondrian sets cover every class at >= 90 %.
    rng = np.random.default_rng(3)
    n = 20000
    labels = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += np.where(labels == 2, 0.3, 2.5)
    probs = softmax(logits)
    cal, test = slice(0, n // 2), slice(n // 2, n)
    marginal = prediction_set(probs[test], conformal_threshold(probs[cal], labels[cal], 0.1))
    per_class = class_conditional_thresholds(probs[cal], labels[cal], 0.1)
    mondrian = prediction_set(probs[test], per_class)
    rows = np.arange(n - n // 2)

    def coverage(sets, k):
        return sets[rows, labels[test]][labels[test] == k].mean()

    assert coverage(marginal, 2) < 0.8
    assert all(0.88 <= coverage(mondrian, k) <= 0.93 for k in range(3))


def test_conformal_floor_is_the_risk_control_quantile():
    p_damage = np.array([0.9, 0.05, 0.6, 0.3, 0.02, 0.8, 0.4, 0.7, 0.5])   # n = 9
    # alpha (n + 1) = 2 windows may fall below: lambda is the 2nd smallest, 0.05
    assert conformal_floor(p_damage, 0.2) == pytest.approx(0.05)
    assert conformal_floor(p_damage, 0.1) == pytest.approx(0.02)   # 1 window
    with pytest.raises(ValueError, match='at least 19 damaged windows, got 9'):
        conformal_floor(p_damage, 0.05, 'damaged windows')
    # alpha (n + 1) >= 1 by hand: 0.1 -> 9, 0.05 -> 19, 0.005 -> 199, 0.3 -> 3 (4 * 0.3 >= 1)
    assert [conformal_min_windows(a) for a in (0.1, 0.05, 0.005, 0.3)] == [9, 19, 199, 3]
    with pytest.raises(ValueError, match=r'a rate must lie in \(0, 1\), got 0'):
        conformal_floor(p_damage, 0.0)


def test_conformal_floor_controls_the_miss_rate_on_new_windows():
    # the guarantee, checked by simulation independently of the formula: over many random
    # calibration / test draws the mean test miss rate stays <= alpha
    rng = np.random.default_rng(0)
    alpha, misses = 0.05, []
    for _ in range(2000):
        cal, test = rng.beta(2, 1, size=59), rng.beta(2, 1, size=200)
        misses.append(np.mean(test < conformal_floor(cal, alpha)))
    assert 0.03 < np.mean(misses) <= alpha


def test_likely_damage_joins_a_none_set_only():
    probs = np.array([0.7, 0.05, 0.2, 0.03, 0.02])          # P(damage) 0.3, most likely 2
    alone = np.array([True, False, False, False, False])
    assert add_likely_damage(alone, probs, 0, 0.3).tolist() == [True, False, True, False, False]
    assert add_likely_damage(alone, probs, 0, 0.31).tolist() == alone.tolist()
    both = np.array([True, True, False, False, False])       # a damage is already possible
    assert add_likely_damage(both, probs, 0, 0.0).tolist() == both.tolist()
    other = np.array([False, False, True, False, False])      # {crack}: nothing to add
    assert add_likely_damage(other, probs, 0, 0.0).tolist() == other.tolist()
