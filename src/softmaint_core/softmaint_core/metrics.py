"""
Evaluation metrics of the protocol: macro-F1, urgency, conformal, risk, decisions.

Shared by the offline tool, the simulator's profile evaluation and the observability probe;
latency percentiles also by the inference node's diagnostics and the suite benchmark.
Calibration error comes from calibration.py (the same code the robot uses). numpy only.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .calibration import expected_calibration_error, prediction_set, Threshold
from .settings import Action, LEVELS
from .taxonomy import CRITICAL_URGENCY


def percentiles(samples: Sequence[float]) -> Dict[str, float]:
    """Return count, p50, p95, p99 and max of samples (NaN when there are none)."""
    if len(samples) == 0:
        return {'n': 0, 'p50': math.nan, 'p95': math.nan, 'p99': math.nan, 'max': math.nan}
    values = np.percentile(np.asarray(samples, dtype=float), [50, 95, 99, 100])
    named = zip(('p50', 'p95', 'p99', 'max'), (float(v) for v in values))
    return {'n': len(samples), **dict(named)}


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, classes: int) -> np.ndarray:
    """Count windows per [true, predicted] class."""
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def per_class_f1(cm: np.ndarray) -> List[Optional[float]]:
    """
    F1 of every class of a confusion matrix; None for a class absent from both axes.

    F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c).
    """
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(axis=0) - tp, cm.sum(axis=1) - tp
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return [float(2 * t / max(2 * t + p + n, 1)) if ok else None
            for t, p, n, ok in zip(tp, fp, fn, present)]


def macro_f1(labels: np.ndarray, preds: np.ndarray, classes: int) -> float:
    """Unweighted mean of per_class_f1 over the classes present in labels or predictions."""
    present = [f1 for f1 in per_class_f1(confusion_matrix(labels, preds, classes))
               if f1 is not None]
    return float(np.mean(present)) if present else 0.0


def missed_critical_rate(true_urgency: np.ndarray, pred_urgency: np.ndarray,
                         critical: float = CRITICAL_URGENCY, low: float = 0.5) -> float:
    """Fraction of critical windows (true urgency >= 0.8) predicted below 0.5 (NaN if none)."""
    crit = true_urgency >= critical
    if not crit.any():
        return float('nan')
    return float((pred_urgency[crit] < low).mean())


def risk_coverage(probs: np.ndarray, labels: np.ndarray):
    """
    Trace the selective-classification curve, keeping the most confident windows first.

    Geifman & El-Yaniv, NeurIPS 2017. Returns arrays of length n and the area under it (AURC).
    """
    order = np.argsort(-probs.max(axis=-1), kind='stable')
    errors = (probs.argmax(axis=-1) != labels)[order].astype(float)
    kept = np.arange(1, len(labels) + 1)
    risk = np.cumsum(errors) / kept
    coverage = kept / len(labels)
    return coverage, risk, float(risk.mean())


def ece_floor(probs: np.ndarray, draws: int = 50, seed: int = 0) -> float:
    """
    ECE that a perfectly calibrated model with these probabilities shows on this many windows.

    Labels are drawn from the probabilities themselves (so calibration holds exactly) and the
    binned ECE is averaged over draws. On a few hundred windows it is far from 0: it is the
    yardstick a measured ECE has to be read against.
    """
    rng = np.random.default_rng(seed)
    cumulative = probs.cumsum(axis=-1)
    last = probs.shape[-1] - 1
    values = []
    for _ in range(draws):
        labels = np.minimum((rng.random((len(probs), 1)) > cumulative).sum(axis=-1), last)
        values.append(expected_calibration_error(probs, labels))
    return float(np.mean(values))


def ece_interval(probs: np.ndarray, labels: np.ndarray, draws: int = 200,
                 seed: int = 0) -> Tuple[float, float]:
    """
    95 % basic bootstrap interval of the ECE over windows (resampled with replacement).

    (2 ECE - q97.5, 2 ECE - q2.5), clipped at 0: the binned ECE of a resample is biased upwards
    (its bins hold fewer distinct windows), and the percentile interval would carry that bias,
    on a hundred windows often above the measured value itself.
    """
    rng = np.random.default_rng(seed)
    values = [expected_calibration_error(probs[i], labels[i])
              for i in rng.integers(0, len(labels), (draws, len(labels)))]
    ece = expected_calibration_error(probs, labels)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(max(0.0, 2 * ece - high)), float(max(0.0, 2 * ece - low))


def head_metrics(probs: np.ndarray, labels: np.ndarray, qhat: Threshold) -> Dict[str, float]:
    """
    Macro-F1, accuracy, ECE (floor, bootstrap interval), conformal coverage and set size.

    coverage_worst_class is the lowest coverage over the classes present: what class-conditional
    sets guarantee and marginal ones do not.

    The coverage interval is Wilson's; both intervals say how far a figure measured on this many
    windows may be from the model's true one.
    """
    classes = probs.shape[-1]
    preds = probs.argmax(axis=-1)
    sets = prediction_set(probs, qhat)
    covered = sets[np.arange(len(labels)), labels]
    ece_low, ece_high = ece_interval(probs, labels)
    return {
        'macro_f1': macro_f1(labels, preds, classes),
        'accuracy': float((preds == labels).mean()),
        'ece': expected_calibration_error(probs, labels),
        'ece_ci_low': ece_low, 'ece_ci_high': ece_high,
        'ece_floor': ece_floor(probs),
        **rate_with_interval(covered, 'coverage'),
        'coverage_worst_class': float(min(covered[labels == k].mean() for k in np.unique(labels))),
        'set_size': float(sets.sum(axis=-1).mean()),
        'aurc': risk_coverage(probs, labels)[2],
    }


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `x`, ties sharing the mean of their ranks (as Spearman's rho needs)."""
    order = np.argsort(x, kind='mergesort')
    sorted_x = np.asarray(x)[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks."""
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[0, 1])


def urgency_metrics(true: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    """Urgency MAE, Spearman rank correlation and missed-critical rate."""
    rho = spearman(true, pred) if np.std(true) > 0 and np.std(pred) > 0 else 0.0
    return {'mae': float(np.abs(true - pred).mean()), 'spearman': float(rho),
            'missed_critical': missed_critical_rate(true, pred),
            'critical_windows': int((true >= CRITICAL_URGENCY).sum())}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    """95 % Wilson score interval of a proportion (Wilson 1927); (nan, nan) when n is 0."""
    if n == 0:
        return float('nan'), float('nan')
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def rate_with_interval(flags: np.ndarray, name: str) -> Dict[str, float]:
    """Share of True in `flags` as `name`, with its Wilson interval (`name`_ci_low, _ci_high)."""
    low, high = wilson_interval(int(flags.sum()), len(flags))
    rate = float(flags.mean()) if len(flags) else float('nan')
    return {name: rate, f'{name}_ci_low': low, f'{name}_ci_high': high}


def decision_confusion(decided: np.ndarray, asked: np.ndarray, truth: np.ndarray
                       ) -> np.ndarray:
    """
    Windows per [true level, decided level], one more column for the windows that asked.

    Rows and the first columns are settings.LEVELS (continue_monitoring .. immediate_shutdown).
    """
    decided, asked, truth = (np.asarray(a) for a in (decided, asked, truth))
    columns = np.where(asked, len(LEVELS), decided)
    counts = np.zeros((len(LEVELS), len(LEVELS) + 1), dtype=np.int64)
    np.add.at(counts, (truth, columns), 1)
    return counts


def critical(truth):
    """Whether a true level (or array of them) calls for acting now: schedule_maintenance+."""
    return truth >= Action.SCHEDULE_MAINTENANCE


def missed(level, truth):
    """Whether a critical truth finds the robot's level below schedule_maintenance."""
    return critical(truth) & (level < Action.SCHEDULE_MAINTENANCE)


def decision_metrics(decided: np.ndarray, asked: np.ndarray, truth: np.ndarray
                     ) -> Dict[str, float]:
    """
    Score a policy's decisions against those the ground truth implies, per window.

    `decided` holds the level (settings.Action value) each window acts at, or holds while it
    asks; `asked` whether it requested assistance; `truth` the level the true labels call for
    (decisions.ground_truth_action). Critical windows are those whose true level is
    schedule_maintenance or higher (the policy must act now); a critical window is missed when
    its decided level is below schedule_maintenance, asking or not. decision_accuracy counts
    a window as right when it was decided without asking and equals the truth.
    """
    decided, asked, truth = (np.asarray(a) for a in (decided, asked, truth))
    acting_now = critical(truth)
    right = (decided == truth) & ~asked
    return {'windows': int(len(truth)), 'critical_windows': int(acting_now.sum()),
            **rate_with_interval(asked, 'assistance_rate'),
            **rate_with_interval(missed(decided, truth)[acting_now], 'missed_critical_rate'),
            **rate_with_interval(right, 'decision_accuracy'),
            'decision_accuracy_alone': float(right[~asked].mean()) if (~asked).any()
            else float('nan'),
            'over_acting_rate': float(((decided > truth) & ~asked).mean())}
