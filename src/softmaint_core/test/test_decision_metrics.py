"""Decision figures against hand-counted windows and published Wilson intervals."""
import numpy as np
import pytest
from softmaint_core.metrics import (confusion_matrix, decision_confusion, decision_metrics,
                                    macro_f1, per_class_f1, wilson_interval)
from softmaint_core.settings import Action

C, R, S, X = (Action.CONTINUE_MONITORING, Action.REDUCE_WORKLOAD,
              Action.SCHEDULE_MAINTENANCE, Action.IMMEDIATE_SHUTDOWN)


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17, table I: 0/10 and 5/10 (alpha 0.05)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_decision_figures_count_windows_as_defined():
    truth = [C, R, S, S, X, X, C, S]
    decided = [C, R, S, R, S, X, S, C]
    asked = [False, False, False, False, True, False, False, True]
    m = decision_metrics(np.array(decided), np.array(asked), np.array(truth))
    assert m['windows'] == 8 and m['critical_windows'] == 5          # S, S, X, X, S
    assert m['assistance_rate'] == pytest.approx(2 / 8)
    # critical decided below schedule: the R (window 3) and the C while asking (window 7)
    assert m['missed_critical_rate'] == pytest.approx(2 / 5)
    # right and decided alone: windows 0, 1, 2, 5
    assert m['decision_accuracy'] == pytest.approx(4 / 8)
    assert m['decision_accuracy_alone'] == pytest.approx(4 / 6)
    assert m['over_acting_rate'] == pytest.approx(1 / 8)              # window 6
    low, high = wilson_interval(2, 5)
    assert (m['missed_critical_rate_ci_low'], m['missed_critical_rate_ci_high']) == (low, high)


def test_decision_confusion_counts_true_against_decided_and_asked_apart():
    truth = [C, R, S, S, X, X, C, S]
    decided = [C, R, S, R, S, X, S, C]
    asked = [False, False, False, False, True, False, False, True]
    counts = decision_confusion(np.array(decided), np.array(asked), np.array(truth))
    assert counts.shape == (4, 5) and counts.sum() == 8
    assert counts[C].tolist() == [1, 0, 1, 0, 0]          # windows 0 and 6
    assert counts[S].tolist() == [0, 1, 1, 0, 1]          # windows 3, 2 and 7 (asked)
    assert counts[X].tolist() == [0, 0, 0, 1, 1]          # window 5, window 4 asked
    assert np.trace(counts[:, :4]) == 4                   # = decision_accuracy * windows


def test_per_class_and_macro_f1_by_hand():
    labels, preds = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    # class 0: TP 1, FN 1 -> 2/3; class 1: TP 1, FP 2 -> 1/2; class 2: FN 1 -> 0; 3 absent
    assert per_class_f1(confusion_matrix(labels, preds, 4)) == pytest.approx(
        [2 / 3, 0.5, 0.0, None])
    assert macro_f1(labels, preds, 4) == pytest.approx((2 / 3 + 0.5) / 3)
    assert macro_f1(np.array([], int), np.array([], int), 3) == 0.0
