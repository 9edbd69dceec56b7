"""
Fatigue levels, damage types and maintenance urgency: the labels every part agrees on.

Fatigue is graded by the remaining fraction of nominal bending stiffness (cyclic softening of the
elastomer). Urgency is derived from remaining useful life (RUL): motion cycles until the arm
reaches the failure criterion at its current degradation rate.
"""
import math

FATIGUE_LEVELS = ('low', 'medium', 'high')
DAMAGE_TYPES = ('none', 'puncture_leak', 'crack_tear', 'delamination_bulge', 'actuator_clog')


def policy_class_error(fatigue_classes, damage_classes):
    """
    Why a model's classes cannot drive the maintenance policy, or None when they can.

    The policy maps each fatigue level to an action (so it knows no other level, and needs
    medium and high) and tells damage from its absence (so `none` must be a class).
    """
    if not {'medium', 'high'} <= set(fatigue_classes) <= set(FATIGUE_LEVELS):
        return (f'fatigue classes must be levels of {FATIGUE_LEVELS} including medium and '
                f'high, got {tuple(fatigue_classes)}')
    if 'none' not in damage_classes:
        return f"damage classes must include 'none', got {tuple(damage_classes)}"
    return None


# Remaining stiffness fraction at or above which fatigue is 'low', resp. 'medium'.
LOW_FATIGUE_MIN_STIFFNESS = 0.85
MEDIUM_FATIGUE_MIN_STIFFNESS = 0.65
# The arm has failed when its stiffness falls below this fraction or a damage reaches severity 1.
FAILURE_STIFFNESS = 0.45
# RUL at which urgency is 0: more than this many cycles left needs no attention at all.
URGENCY_HORIZON_CYCLES = 20000.0
# Urgency at or above which a state is critical (used by the agent and the missed-critical metric).
CRITICAL_URGENCY = 0.8


def fatigue_level(stiffness_fraction: float) -> int:
    """Return the index into FATIGUE_LEVELS for a remaining stiffness fraction in [0, 1]."""
    if not 0.0 <= stiffness_fraction <= 1.0 + 1e-9:
        raise ValueError(f'stiffness_fraction must be in [0, 1], got {stiffness_fraction}')
    if stiffness_fraction >= LOW_FATIGUE_MIN_STIFFNESS:
        return 0
    if stiffness_fraction >= MEDIUM_FATIGUE_MIN_STIFFNESS:
        return 1
    return 2


def urgency_from_rul(rul_cycles: float, horizon: float = URGENCY_HORIZON_CYCLES) -> float:
    """
    Map remaining useful life [cycles] to urgency in [0, 1].

    urgency = 1 - RUL / horizon, clipped: 1 means failure now, 0 means at least `horizon`
    cycles left, and urgency >= CRITICAL_URGENCY means fewer than 20 % of the horizon remain.
    """
    if math.isnan(rul_cycles) or rul_cycles < 0:
        raise ValueError(f'remaining useful life must be >= 0 cycles, got {rul_cycles}')
    return float(min(1.0, max(0.0, 1.0 - rul_cycles / horizon)))
