"""
Turn the student's raw ONNX outputs into calibrated, uncertainty-aware predictions.

Shared by the inference node and offline bag evaluation, so both publish the same numbers.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from .calibration import add_likely_damage, prediction_set, softmax
from .metadata import ModelMetadata

# An ensemble std of this much urgency counts as fully uncertain.
URGENCY_STD_FULL_SCALE = 0.25


@dataclass
class Prediction:
    """One window's calibrated prediction."""

    fatigue_probs: np.ndarray       # [3]
    damage_probs: np.ndarray        # [5]
    fatigue_set: List[int]
    damage_set: List[int]
    urgency: float
    urgency_std: float
    fatigue_entropy: float
    damage_entropy: float
    fatigue_disagreement: float
    damage_disagreement: float
    uncertainty: float              # [0, 1]
    reconstructed: Dict[str, np.ndarray]       # missing modality -> predicted embedding
    reconstruction_confidence: Dict[str, float]


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats."""
    return -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=axis)


def _head(logits: np.ndarray, temperature: float):
    """Ensemble-mean calibrated probs, predictive entropy and mutual information (one window)."""
    member_probs = softmax(logits, temperature)           # [K, C]
    mean = member_probs.mean(axis=0)
    total = float(entropy(mean))
    disagreement = max(0.0, total - float(entropy(member_probs).mean()))
    return mean, total, disagreement


def _cosine_agreement(vectors: np.ndarray) -> float:
    """Mean pairwise cosine similarity of ensemble members' vectors [K, E], mapped to [0, 1]."""
    if len(vectors) < 2:
        return 1.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
    sim = unit @ unit.T
    k = len(vectors)
    return float(np.clip((sim.sum() - k) / (k * (k - 1)), 0.0, 1.0))


def postprocess(outputs: Dict[str, np.ndarray], mask: Sequence[bool],
                meta: ModelMetadata) -> Prediction:
    """Calibrate one window's outputs (batch index 0) with the model's metadata."""
    fatigue, f_entropy, f_mi = _head(outputs['fatigue_logits'][0], meta.temperature_fatigue)
    damage, d_entropy, d_mi = _head(outputs['damage_logits'][0], meta.temperature_damage)
    urgency_members = np.asarray(outputs['urgency'][0], dtype=np.float64)
    urgency_std = float(urgency_members.std())
    uncertainty = max(f_entropy / np.log(len(fatigue)), d_entropy / np.log(len(damage)),
                      min(1.0, urgency_std / URGENCY_STD_FULL_SCALE))
    reconstruction = outputs['reconstruction'][0]           # [K, M, E]
    names = meta.input_spec.names
    missing = [i for i, ok in enumerate(mask) if not ok]
    damage_set = prediction_set(damage, meta.conformal_damage)
    if meta.damage_miss_threshold is not None:
        damage_set = add_likely_damage(damage_set, damage, meta.damage_classes.index('none'),
                                       meta.damage_miss_threshold)
    return Prediction(
        fatigue_probs=fatigue.astype(np.float32),
        damage_probs=damage.astype(np.float32),
        fatigue_set=np.flatnonzero(prediction_set(fatigue, meta.conformal_fatigue)).tolist(),
        damage_set=np.flatnonzero(damage_set).tolist(),
        urgency=float(np.clip(urgency_members.mean(), 0.0, 1.0)),
        urgency_std=urgency_std,
        fatigue_entropy=f_entropy, damage_entropy=d_entropy,
        fatigue_disagreement=f_mi, damage_disagreement=d_mi,
        uncertainty=float(np.clip(uncertainty, 0.0, 1.0)),
        reconstructed={names[i]: reconstruction[:, i].mean(axis=0).astype(np.float32)
                       for i in missing},
        reconstruction_confidence={names[i]: _cosine_agreement(reconstruction[:, i])
                                   for i in missing},
    )
