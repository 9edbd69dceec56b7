"""
A run of the suite against ground truth: fault onsets, time to detect them, decisions over time.

Shared by the live monitor (the demo's summary) and offline bag evaluation. Times are seconds on
one clock (header stamps). A fault's onset is the first ground-truth sample whose damage type or
fatigue level differs from the one before; it is detected by the first prediction at or after the
onset whose most likely class is the new one, and acted on by the first decision at or after the
onset that is at least schedule_maintenance (or asks for assistance).
"""
from dataclasses import dataclass, field
import math
from typing import Dict, List, Optional, Sequence

from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS

ACTIONS = ('continue_monitoring', 'reduce_workload', 'schedule_maintenance',
           'immediate_shutdown', 'request_assistance')
# Decisions that count as acting on a fault.
ACTING = frozenset(('schedule_maintenance', 'immediate_shutdown'))


@dataclass
class Truth:
    """Ground truth at one time."""

    stamp: float
    fatigue: int
    damage: int
    urgency: float


@dataclass
class Predicted:
    """A prediction's headline numbers at one time."""

    stamp: float
    fatigue: int                # most likely class
    damage: int
    urgency: float
    uncertainty: float


@dataclass
class Decided:
    """A decision at one time."""

    stamp: float
    action: str


@dataclass
class Onset:
    """One change of the ground truth and how long the suite took to notice it."""

    stamp: float
    head: str                   # 'damage' or 'fatigue'
    label: str                  # class name it changed to
    detected_after: Optional[float] = None   # seconds to the first matching prediction
    acted_after: Optional[float] = None      # seconds to the first acting decision


@dataclass
class Timeline:
    """Everything seen during a run, in arrival order."""

    truth: List[Truth] = field(default_factory=list)
    predictions: List[Predicted] = field(default_factory=list)
    decisions: List[Decided] = field(default_factory=list)

    def onsets(self) -> List[Onset]:
        """Return the changes of damage type and fatigue level, with time to detect and act."""
        found = []
        for before, now in zip(self.truth, self.truth[1:]):
            if now.damage != before.damage:
                found.append(Onset(now.stamp, 'damage', DAMAGE_TYPES[now.damage]))
            if now.fatigue != before.fatigue:
                found.append(Onset(now.stamp, 'fatigue', FATIGUE_LEVELS[now.fatigue]))
        for onset in found:
            onset.detected_after = _first_after(
                onset.stamp, [p.stamp for p in self.predictions
                              if _label(p, onset.head) == onset.label])
            onset.acted_after = _first_after(
                onset.stamp, [d.stamp for d in self.decisions if d.action in ACTING])
        return found

    def decision_durations(self, end: Optional[float] = None) -> Dict[str, float]:
        """Return the seconds spent in each action (a decision holds until the next one)."""
        durations = dict.fromkeys(ACTIONS, 0.0)
        if not self.decisions:
            return durations
        end = self.decisions[-1].stamp if end is None else end
        stamps = [d.stamp for d in self.decisions[1:]] + [end]
        for decision, until in zip(self.decisions, stamps):
            durations[decision.action] += max(0.0, until - decision.stamp)
        return durations

    def urgency_mae(self) -> float:
        """Return the mean absolute error of predicted urgency against the latest truth."""
        errors = []
        for pred in self.predictions:
            truth = latest_before(self.truth, pred.stamp)
            if truth is not None:
                errors.append(abs(pred.urgency - truth.urgency))
        return sum(errors) / len(errors) if errors else math.nan

    def summary(self) -> dict:
        """Return a JSON-ready summary of the run."""
        stamps = [s.stamp for s in self.truth] + [p.stamp for p in self.predictions]
        return {
            'start': min(stamps) if stamps else 0.0,
            'predictions': len(self.predictions),
            # the agent republishes its decision; count the changes of action
            'decision_changes': sum(a.action != b.action for a, b in
                                    zip(self.decisions, self.decisions[1:])),
            'truth_samples': len(self.truth),
            'onsets': [vars(o) for o in self.onsets()],
            'decision_seconds': self.decision_durations(
                self.predictions[-1].stamp if self.predictions else None),
            'urgency_mae': self.urgency_mae(),
        }


def _label(pred: Predicted, head: str) -> str:
    return DAMAGE_TYPES[pred.damage] if head == 'damage' else FATIGUE_LEVELS[pred.fatigue]


def _first_after(start: float, stamps: Sequence[float]) -> Optional[float]:
    later = [s - start for s in stamps if s >= start]
    return min(later) if later else None


def latest_before(samples: Sequence[Truth], stamp: float) -> Optional[Truth]:
    """Return the last sample at or before `stamp` (samples in time order), or None."""
    best = None
    for sample in samples:
        if sample.stamp > stamp:
            break
        best = sample
    return best
