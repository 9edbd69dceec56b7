"""
Post-hoc calibration of the ensemble: temperatures and split-conformal thresholds.

The onboard side (softmaint_core.postprocess) computes mean_k softmax(z_k / T) over the K
members; T is fitted here to minimise the negative log-likelihood of exactly that ensemble mean
on the held-out calibration split (temperature scaling, Guo et al., ICML 2017), and the LAC
conformal threshold q-hat is then computed on the calibrated probabilities with
softmaint_core.calibration.conformal_threshold, or one per class with
class_conditional_thresholds (Mondrian sets: coverage for every class, not only on average).
With a miss rate, the damage head also gets the threshold of
softmaint_core.calibration.conformal_floor from the damaged calibration windows. The camera's
signal-to-noise floor of the input spec (camera_min_snr) is the same bound on unlabelled
windows; the pipeline fits it before training.
"""
from typing import Dict

import numpy as np
from scipy.optimize import minimize_scalar
from softmaint_core.calibration import (class_conditional_thresholds, conformal_floor,
                                        conformal_threshold, softmax)
from softmaint_core.image import frame_snr
from softmaint_core.taxonomy import DAMAGE_TYPES

from .config import CalibrationConfig

T_MIN, T_MAX = 0.05, 20.0


def ensemble_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Mean over members of softmax(logits / T): logits [n, K, C] -> probs [n, C]."""
    return softmax(logits, temperature).mean(axis=1)


def ensemble_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the ensemble-mean probabilities."""
    probs = ensemble_probs(logits, temperature)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature in [T_MIN, T_MAX] minimising the ensemble-mean NLL (bounded search on log T)."""
    result = minimize_scalar(lambda log_t: ensemble_nll(logits, labels, float(np.exp(log_t))),
                             bounds=(np.log(T_MIN), np.log(T_MAX)), method='bounded',
                             options={'xatol': 1e-4})
    return float(np.exp(result.x))


def calibrate(outputs: Dict[str, np.ndarray], labels: Dict[str, np.ndarray],
              config: CalibrationConfig) -> Dict[str, object]:
    """
    Temperatures and conformal q-hats for fatigue and damage from calibration outputs.

    config.conformal_sets 'marginal': one q-hat per head; 'class_conditional': a list of one
    per class. config.damage_miss_alpha > 0: also the damage miss-rate threshold (raises
    ValueError when there are too few damaged calibration windows for it).
    """
    alpha, sets, miss_alpha = (config.conformal_alpha, config.conformal_sets,
                               config.damage_miss_alpha)
    result = {'conformal_alpha': float(alpha), 'conformal_sets': sets,
              'windows': int(len(labels['damage']))}
    for head in ('fatigue', 'damage'):
        t = fit_temperature(outputs[head], labels[head])
        probs = ensemble_probs(outputs[head], t)
        result[f'temperature_{head}'] = t
        result[f'conformal_{head}'] = (
            class_conditional_thresholds(probs, labels[head], alpha).tolist()
            if sets == 'class_conditional' else conformal_threshold(probs, labels[head], alpha))
        result[f'nll_before_{head}'] = ensemble_nll(outputs[head], labels[head], 1.0)
        result[f'nll_after_{head}'] = ensemble_nll(outputs[head], labels[head], t)
        if head == 'damage' and miss_alpha > 0:
            none = DAMAGE_TYPES.index('none')
            damaged = labels[head] != none
            result['damage_miss_alpha'] = float(miss_alpha)
            result['damage_miss_threshold'] = conformal_floor(
                1.0 - probs[damaged, none], miss_alpha, 'damaged calibration windows')
    return result


def camera_min_snr(frames: np.ndarray, available: np.ndarray, alpha: float) -> float:
    """
    Return the camera's readability floor: at most alpha of field windows like these are below.

    conformal_floor of image.frame_snr over the windows [n, T, C, H, W] whose camera was
    available. Onboard, a camera window below it is UNREADABLE (softmaint_core.window): a scene
    darker or more turbid than nearly all the model was trained on is read as a missing camera.
    """
    snr = frame_snr(frames[np.asarray(available, dtype=bool)])
    return conformal_floor(snr, alpha, 'field windows with a camera')
