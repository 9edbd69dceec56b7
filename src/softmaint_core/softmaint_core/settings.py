"""
Policy settings: the maintenance actions, the thresholds and what the actions mean here.

Validated on construction (ThresholdError names the field and its allowed values), so a
parameter file, a profile overlay or a parameter change at run time cannot set an invalid
policy. The decision state machine (decisions.py) reads them.
"""
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Dict

from .spec import MODALITIES
from .taxonomy import CRITICAL_URGENCY


class Action(IntEnum):
    """Maintenance actions; the values are the MaintenanceDecision constants."""

    CONTINUE_MONITORING = 0
    REDUCE_WORKLOAD = 1
    SCHEDULE_MAINTENANCE = 2
    IMMEDIATE_SHUTDOWN = 3
    REQUEST_ASSISTANCE = 4

    @property
    def label(self) -> str:
        """Return the name in lower case, e.g. 'reduce_workload'."""
        return self.name.lower()


# Actions ordered by severity; request_assistance is not a level but a call for a human.
LEVELS = (Action.CONTINUE_MONITORING, Action.REDUCE_WORKLOAD, Action.SCHEDULE_MAINTENANCE,
          Action.IMMEDIATE_SHUTDOWN)
# Reasons that open an assistance request at once instead of after escalate_windows windows.
URGENT_REASONS = ('critical_unconfirmed', 'stale_predictions', 'shutdown_latched')


class ThresholdError(ValueError):
    """A threshold outside its allowed range or inconsistent with another one."""


# What immediate_shutdown does, by shutdown_mode (the robot's emergency-stop handler does it).
SHUTDOWN_MODES = {
    'stop': 'stop in place',
    'surface': 'safe surfacing posture: arm stowed, vehicle ascends',
    'retract': 'retract from the patient, then stop',
    'safe_hold': 'stow and hold until the ground station answers',
}
AUTONOMOUS_ACTIONS = ('reduce_workload', 'schedule_maintenance', 'immediate_shutdown')


def _setting(default, description, choices=None, low=None, high=None):
    return field(default=default, metadata={'description': description, 'choices': choices,
                                            'range': (low, high)})


@dataclass(frozen=True)
class ActionSettings:
    """What the actions mean where the robot works; validated like Thresholds."""

    shutdown_mode: str = _setting(
        'stop', 'what immediate_shutdown does here', choices=tuple(SHUTDOWN_MODES))
    assistance_latency: float = _setting(
        0.0, 'expected time until a human answers an assistance request [s]', low=0.0,
        high=604800.0)
    max_assistance_latency: float = _setting(
        600.0, 'longest answer time the robot may wait for; beyond it acts on its own [s]',
        low=0.0, high=604800.0)
    autonomous_action: str = _setting(
        'reduce_workload', 'least the robot does on its own instead of asking when assistance '
        'is too far away', choices=AUTONOMOUS_ACTIONS)

    def __post_init__(self):
        """Check every field's choice or type and range."""
        for spec in fields(self):
            value, choices = getattr(self, spec.name), spec.metadata['choices']
            low, high = spec.metadata['range']
            if choices is not None and value not in choices:
                raise ThresholdError(f'{spec.name} must be one of {list(choices)}, '
                                     f'got {value!r}')
            if choices is None and (isinstance(value, bool) or not isinstance(
                    value, (int, float)) or not low <= value <= high):
                raise ThresholdError(f'{spec.name} must be a number in [{low}, {high}], '
                                     f'got {value!r}')

    @classmethod
    def from_mapping(cls, values: Dict[str, object]) -> 'ActionSettings':
        """Build from {field name: value}; unknown names raise ThresholdError."""
        unknown = set(values) - {spec.name for spec in fields(cls)}
        if unknown:
            raise ThresholdError(f'unknown action settings {sorted(unknown)}')
        return cls(**values)

    @property
    def assistance_available(self) -> bool:
        """Return whether assistance answers within the time the robot may wait."""
        return self.assistance_latency <= self.max_assistance_latency

    @property
    def shutdown_meaning(self) -> str:
        """Return what immediate_shutdown does here, in words."""
        return SHUTDOWN_MODES[self.shutdown_mode]


DEFAULT_ACTIONS = ActionSettings()


def _threshold(default, low, high, description):
    return field(default=default, metadata={'range': (low, high), 'description': description})


@dataclass(frozen=True)
class Thresholds:
    """Validated policy thresholds; constructing an invalid set raises ThresholdError."""

    reduce_urgency: float = _threshold(
        0.4, 0.0, 1.0, 'urgency at or above which the workload is reduced')
    schedule_urgency: float = _threshold(
        0.6, 0.0, 1.0, 'urgency at or above which maintenance is scheduled')
    critical_urgency: float = _threshold(
        CRITICAL_URGENCY, 0.0, 1.0, 'urgency at or above which a confident prediction '
        'shuts the arm down at once')
    urgency_band: float = _threshold(
        0.5, 0.0, 5.0, 'ensemble standard deviations around the mean urgency that the policy '
        'holds possible')
    ambiguity_spread: int = _threshold(
        3, 1, 3, 'levels the candidate actions of a prediction set must span for a human to be '
        'asked; a smaller spread takes the safest (a possible but uncertain shutdown always '
        'asks)')
    min_modalities: int = _threshold(
        2, 0, len(MODALITIES), 'fewest available input modalities before a human is asked')
    escalate_windows: int = _threshold(
        3, 1, 100, 'consecutive windows that must call for a higher level before escalating')
    deescalate_windows: int = _threshold(
        10, 1, 1000, 'consecutive windows that must call for a lower level before '
        'de-escalating (and to withdraw an assistance request)')
    reduced_workload: float = _threshold(
        0.5, 0.0, 1.0, 'workload limit under reduce_workload (fraction of nominal)')
    maintenance_workload: float = _threshold(
        0.25, 0.0, 1.0, 'workload limit while maintenance is scheduled')
    assistance_workload: float = _threshold(
        0.5, 0.0, 1.0, 'highest workload limit while a human is asked')

    # (lower, upper): the first must not exceed the second.
    ORDERED = (('reduce_urgency', 'schedule_urgency'), ('schedule_urgency', 'critical_urgency'),
               ('escalate_windows', 'deescalate_windows'),
               ('maintenance_workload', 'reduced_workload'))

    def __post_init__(self):
        """Check every field's type and range, then their order."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            low, high = spec.metadata['range']
            numeric = (int,) if spec.type is int else (int, float)
            if isinstance(value, bool) or not isinstance(value, numeric):
                raise ThresholdError(f'{spec.name} must be {spec.type.__name__} in '
                                     f'[{low}, {high}], got {value!r}')
            if not low <= value <= high:       # also refuses NaN
                raise ThresholdError(f'{spec.name} must be in [{low}, {high}], got {value!r}')
        for lower, upper in self.ORDERED:
            if getattr(self, lower) > getattr(self, upper):
                raise ThresholdError(f'{lower} ({getattr(self, lower)}) must be <= {upper} '
                                     f'({getattr(self, upper)})')

    @classmethod
    def from_mapping(cls, values: Dict[str, object]) -> 'Thresholds':
        """Build from {field name: value}; unknown names raise ThresholdError."""
        unknown = set(values) - {spec.name for spec in fields(cls)}
        if unknown:
            raise ThresholdError(f'unknown thresholds {sorted(unknown)}')
        return cls(**values)

    def workload(self, level: Action) -> float:
        """Workload limit of a level (fraction of nominal)."""
        return {Action.CONTINUE_MONITORING: 1.0, Action.REDUCE_WORKLOAD: self.reduced_workload,
                Action.SCHEDULE_MAINTENANCE: self.maintenance_workload,
                Action.IMMEDIATE_SHUTDOWN: 0.0}[level]
