"""
Calibration measures and split-conformal prediction sets (numpy only).

Conformal sets use the LAC score s = 1 - p(true class) (Sadinle, Lei & Wasserman, JASA 2019):
with q-hat the ceil((n + 1)(1 - alpha)) / n empirical quantile of the scores on n held-out
calibration windows, the set {k : 1 - p_k <= q-hat} contains the true class with probability at
least 1 - alpha on exchangeable data (Vovk et al. 2005; Angelopoulos & Bates 2021).

Class-conditional (Mondrian) sets take one q-hat per class from the calibration windows of
that class, so the set contains the true class with probability at least 1 - alpha *for every
class* (Vovk 2012; Angelopoulos & Bates 2021, sec. 4.1). A marginal q-hat lets a rare class with
low probabilities fall out of its sets far more often than 1 in 10; for damage that is the
small, just-detectable fault the agent then never considers.

Per-class coverage still leaves a damaged arm at `{none}` on up to alpha of its windows, and a
sharp model does exactly that. The miss-rate threshold answers the safety question instead:
conformal risk control of the false-negative rate of "some damage" (Angelopoulos, Bates, Fisch,
Lei & Schuster, "Conformal Risk Control", ICLR 2024): lambda is set on the damaged calibration
windows so that a `{none}` set whose P(damage) = 1 - p(none) reaches lambda also holds the most
probable damage, and at most alpha of damaged windows stay at `{none}` in expectation.
"""
from typing import Sequence, Union

import numpy as np

# A conformal threshold: one q-hat for every class (marginal) or one per class (Mondrian).
Threshold = Union[float, Sequence[float]]


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax of logits / temperature."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def conformal_threshold(probs: np.ndarray, labels: np.ndarray, alpha: float) -> float:
    """Split-conformal q-hat for LAC scores from calibration probs [n, C] and labels [n]."""
    n = len(labels)
    if n == 0:
        raise ValueError('conformal calibration needs at least one window')
    if not 0 < alpha < 1:
        raise ValueError(f'alpha must be in (0, 1), got {alpha}')
    scores = np.sort(1.0 - probs[np.arange(n), labels])
    rank = int(np.ceil((n + 1) * (1 - alpha)))  # 1-based rank of q-hat among the scores
    if rank > n:  # too few calibration windows for this alpha: the set must be everything
        return 1.0
    return float(scores[rank - 1])


def class_conditional_thresholds(probs: np.ndarray, labels: np.ndarray,
                                 alpha: float) -> np.ndarray:
    """
    Mondrian q-hat of every class [C]: conformal_threshold over that class's windows alone.

    A class with fewer than (1 - alpha) / alpha calibration windows gets 1.0: it is in every
    set, the only threshold with the guarantee at that sample size.
    """
    if len(labels) == 0:
        raise ValueError('conformal calibration needs at least one window')
    thresholds = np.ones(probs.shape[-1])
    for k in range(probs.shape[-1]):
        of_class = labels == k
        if of_class.any():
            thresholds[k] = conformal_threshold(probs[of_class], labels[of_class], alpha)
    return thresholds


def prediction_set(probs: np.ndarray, threshold: Threshold) -> np.ndarray:
    """Boolean mask [..., C] of the classes in the conformal set (never empty)."""
    members = (1.0 - probs) <= np.asarray(threshold, dtype=np.float64) + 1e-12
    top = np.argmax(probs, axis=-1)
    np.put_along_axis(members, top[..., None], True, axis=-1)
    return members


def conformal_floor(scores: np.ndarray, alpha: float, windows: str = 'calibration windows'
                    ) -> float:
    """
    Lambda: a new window scores below it with probability at most alpha (conformal).

    `scores` [n] of n calibration windows exchangeable with the new one. With
    k = floor(alpha (n + 1)) windows allowed below, lambda is the k-th smallest score, so the
    expected share of new windows below it is at most k / (n + 1) <= alpha (conformal risk
    control, Angelopoulos et al., ICLR 2024). Two uses: P(damage) of damaged windows (the miss
    rate of "some damage"), and a camera frame's signal-to-noise (training windows that would be
    read as unreadable). Raises ValueError when n is too small for alpha (alpha (n + 1) < 1): no
    lambda has the guarantee then; `windows` names them in the message.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    if not 0 < alpha < 1:
        raise ValueError(f'a rate must lie in (0, 1), got {alpha}')
    if len(scores) < conformal_min_windows(alpha):
        raise ValueError(f'a rate of {alpha} needs at least {conformal_min_windows(alpha)} '
                         f'{windows}, got {len(scores)}')
    return float(scores[int(np.floor(alpha * (len(scores) + 1) + 1e-9)) - 1])


def conformal_min_windows(alpha: float) -> int:
    """Fewest calibration windows conformal_floor needs for alpha: alpha (n + 1) >= 1."""
    return max(int(np.ceil(1.0 / alpha - 1.0 - 1e-9)), 1)


def add_likely_damage(damage_set: np.ndarray, probs: np.ndarray, none: int,
                      threshold: float) -> np.ndarray:
    """Damage set mask [C] with the most probable damage added to a {none} set at P >= lambda."""
    if damage_set.sum() != 1 or not damage_set[none] or 1.0 - probs[none] < threshold:
        return damage_set
    damage = np.array(probs, dtype=np.float64)
    damage[none] = -np.inf
    out = damage_set.copy()
    out[int(np.argmax(damage))] = True
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins (Guo et al., ICML 2017)."""
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)
