"""Temperature fitting on the ensemble mean, conformal thresholds, protocol metrics."""
import numpy as np
import pytest
from softmaint_core.calibration import expected_calibration_error, softmax
from softmaint_core.metrics import (head_metrics, macro_f1, missed_critical_rate,
                                    risk_coverage, urgency_metrics)
from softmaint_train.calibrate import calibrate, ensemble_probs, fit_temperature
from softmaint_train.config import CalibrationConfig


def test_macro_f1_by_hand():
    labels = np.array([0, 0, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0])
    # class 0: TP1 FP1 FN1 -> 0.5; class 1: TP2 FP1 FN0 -> 0.8; class 2: TP0 FN1 -> 0
    assert macro_f1(labels, preds, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(labels, labels, 5) == 1.0                  # absent classes skipped


def test_missed_critical_and_urgency():
    true = np.array([0.9, 0.85, 0.1, 0.95])
    pred = np.array([0.4, 0.6, 0.9, 0.2])
    assert missed_critical_rate(true, pred) == pytest.approx(2 / 3)
    assert np.isnan(missed_critical_rate(np.array([0.1]), np.array([0.1])))
    m = urgency_metrics(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.3, 0.5]))
    assert m['mae'] == pytest.approx(0.4 / 3) and m['spearman'] == pytest.approx(1.0)


def test_risk_coverage_orders_by_confidence():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    labels = np.array([0, 1, 1])
    coverage, risk, aurc = risk_coverage(probs, labels)
    # most confident first: 0.9 right, 0.8 right, 0.6 wrong
    assert risk.tolist() == pytest.approx([0.0, 0.0, 1 / 3])
    assert aurc == pytest.approx(1 / 9)
    assert coverage[-1] == 1.0


def test_fit_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(z)])
    logits = np.stack([2.5 * z, 2.5 * z], axis=1)               # K = 2, too sharp by 2.5
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.1)


def test_calibrate_gives_coverage_near_nominal():
    rng = np.random.default_rng(1)
    n = 3000
    z = rng.normal(0, 2, (2 * n, 1, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(z[:, 0])])
    out = {'fatigue': z[:, :, :3], 'damage': z}
    lab = {'fatigue': np.array([rng.choice(3, p=p) for p in softmax(z[:, 0, :3])]),
           'damage': labels}
    cal = calibrate({k: v[:n] for k, v in out.items()}, {k: v[:n] for k, v in lab.items()},
                    CalibrationConfig(conformal_alpha=0.1))
    probs = ensemble_probs(out['damage'][n:], cal['temperature_damage'])
    m = head_metrics(probs, labels[n:], cal['conformal_damage'])
    assert m['coverage'] == pytest.approx(0.9, abs=0.02)
    assert m['coverage_ci_low'] < m['coverage'] < m['coverage_ci_high']
    assert m['coverage_ci_high'] - m['coverage_ci_low'] < 0.025       # n = 3000
    assert m['ece'] < 0.03
    assert m['ece_ci_low'] <= m['ece'] <= m['ece_ci_high'] < 0.05
    assert cal['nll_after_damage'] <= cal['nll_before_damage'] + 1e-9


def test_class_conditional_calibration_gives_one_threshold_per_class():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, (4000, 2, 5))
    labels = {'fatigue': rng.integers(0, 3, 4000), 'damage': rng.integers(0, 5, 4000)}
    cal = calibrate({'fatigue': z[..., :3], 'damage': z}, labels,
                    CalibrationConfig(0.1, 'class_conditional'))
    assert cal['conformal_sets'] == 'class_conditional'
    assert len(cal['conformal_fatigue']) == 3 and len(cal['conformal_damage']) == 5
    probs = ensemble_probs(z, cal['temperature_damage'])
    m = head_metrics(probs, labels['damage'], cal['conformal_damage'])
    assert m['coverage_worst_class'] >= 0.9 - 1e-9          # on its own calibration windows
    assert m['coverage'] >= m['coverage_worst_class']


def test_miss_rate_calibration_keeps_damaged_windows_out_of_none_sets():
    # a model leaning to 'none' leaves ~4 % of damaged windows at {none} under 90 % sets;
    # with the miss-rate threshold at most ~1 % of new damaged windows stay there
    from softmaint_core.calibration import add_likely_damage, prediction_set
    from softmaint_core.taxonomy import DAMAGE_TYPES
    rng = np.random.default_rng(3)
    none, n = DAMAGE_TYPES.index('none'), 6000
    labels = rng.integers(0, 5, n)
    z = rng.normal(0, 1, (n, 1, 5))
    z[np.arange(n), 0, labels] += 1.5
    z[:, 0, none] += 2.0                                  # leans to 'none'
    lab = {'fatigue': rng.integers(0, 3, n), 'damage': labels}
    half = n // 2
    cal = calibrate({'fatigue': z[:half, :, :3], 'damage': z[:half]},
                    {k: v[:half] for k, v in lab.items()},
                    CalibrationConfig(0.1, 'marginal', 0.01))
    assert cal['damage_miss_alpha'] == 0.01 and 0 < cal['damage_miss_threshold'] < 1
    probs = ensemble_probs(z[half:], cal['temperature_damage'])
    missed = {False: 0, True: 0}
    for p, y in zip(probs, labels[half:]):
        if y == none:
            continue
        plain = prediction_set(p, cal['conformal_damage'])
        guarded = add_likely_damage(plain, p, none, cal['damage_miss_threshold'])
        missed[False] += plain.tolist() == [i == none for i in range(5)]
        missed[True] += guarded.tolist() == [i == none for i in range(5)]
    damaged = int((labels[half:] != none).sum())
    assert missed[False] / damaged > 0.03                 # the per-class sets alone miss more
    assert missed[True] / damaged <= 0.015
    with pytest.raises(ValueError, match='damaged calibration windows'):
        calibrate({'fatigue': z[:20, :, :3], 'damage': z[:20]},
                  {k: v[:20] for k, v in lab.items()}, CalibrationConfig(0.1, 'marginal', 0.01))


def test_ece_floor_is_what_a_calibrated_model_shows():
    from softmaint_core.metrics import ece_floor
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5), size=300)
    labels = np.array([rng.choice(5, p=p) for p in probs])   # calibrated by construction
    floor = ece_floor(probs)
    assert 0.03 < floor < 0.12                           # far from 0 on 300 windows
    assert abs(expected_calibration_error(probs, labels) - floor) < 0.04
    assert ece_floor(np.eye(5)[labels]) == 0.0            # certain and right: nothing to miss


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr
    from softmaint_core.metrics import spearman
    rng = np.random.default_rng(4)
    true = np.round(rng.random(300), 1)          # many ties, like urgency's zeros
    pred = true + rng.normal(0.0, 0.2, 300)
    pred[:50] = 0.0
    assert spearman(true, pred) == pytest.approx(spearmanr(true, pred).statistic, abs=1e-12)


def test_ece_interval_narrows_with_more_windows():
    from softmaint_core.metrics import ece_interval
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(5), size=4000)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    small = ece_interval(probs[:300], labels[:300])
    large = ece_interval(probs, labels)
    assert large[1] - large[0] < (small[1] - small[0]) / 2   # ~1/sqrt(n)
    assert large[0] <= expected_calibration_error(probs, labels) <= large[1]
