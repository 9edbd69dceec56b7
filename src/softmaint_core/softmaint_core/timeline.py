"""
A run of the suite against ground truth: fault onsets, time to detect them, decisions over time.

Shared by the live monitor (the demo's summary) and offline bag evaluation. Times are seconds on
one clock (header stamps). A fault's onset is the first ground-truth sample whose damage type or
fatigue level differs from the one before; it is detected by the first prediction at or after the
onset whose most likely class is the new one, and acted on by the first decision at or after the
onset that is at least schedule_maintenance (or asks for assistance). Given the policy's
thresholds, each decision is also compared, for as long as it holds, with the level the ground
truth at its time implies (decisions.ground_truth_action, as offline evaluations do).
"""
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

from .decisions import ground_truth_action
from .metrics import critical, missed
from .settings import Action, LEVELS, Thresholds
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
    level: str = ''             # the level held while asking for assistance ('' = action)

    def error(self) -> str:
        """Return why the timeline cannot count this decision ('' when it can)."""
        if self.action not in {a.label for a in Action}:
            return f'unknown action {self.action[:40]!r}'
        if self.level not in {''} | {a.label for a in LEVELS}:
            return f'unknown level {self.level[:40]!r}'
        return ''

    def held_level(self) -> Action:
        """
        Return the level the robot is at under this decision.

        While asking, the level it held; continue_monitoring when the decision does not say
        (an older publisher): a critical state is then counted as missed, not as handled.
        """
        if self.action != 'request_assistance':
            return Action[self.action.upper()]
        return Action[(self.level or 'continue_monitoring').upper()]


def summary_json(summary: dict) -> str:
    """Return a run summary as strict JSON: a figure the run could not measure (NaN) is null."""
    def strict(value):
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strict(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    return json.dumps(strict(summary), indent=2, allow_nan=False)


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

    def decision_holds(self, end: Optional[float] = None) -> List[Tuple[Decided, float]]:
        """Return every decision with the seconds it held (until the next one, or `end`)."""
        if not self.decisions:
            return []
        end = self.decisions[-1].stamp if end is None else end
        stamps = [d.stamp for d in self.decisions[1:]] + [end]
        return [(d, max(0.0, until - d.stamp)) for d, until in zip(self.decisions, stamps)]

    def decision_durations(self, end: Optional[float] = None) -> Dict[str, float]:
        """Return the seconds spent in each action (a decision holds until the next one)."""
        durations = dict.fromkeys(ACTIONS, 0.0)
        for decision, held in self.decision_holds(end):
            durations[decision.action] += held
        return durations

    def against_truth(self, thresholds: Thresholds, end: Optional[float] = None) -> dict:
        """
        Seconds of each decision against the level the truth at its time implies.

        `seconds[truth level][action]`; `right` counts a decision equal to that level (asking is
        not), `missed_critical` a critical truth (schedule_maintenance or higher) while the
        robot's level, asking or not, is below schedule_maintenance: the definitions of
        softmaint_core.metrics.decision_metrics, weighted by time.
        """
        seconds = {level.label: dict.fromkeys(ACTIONS, 0.0) for level in LEVELS}
        judged = right = acting_now = left = 0.0
        for decision, truth, held in self._holds_under_truth(end):
            implied = ground_truth_action(FATIGUE_LEVELS[truth.fatigue],
                                          DAMAGE_TYPES[truth.damage], truth.urgency, thresholds)
            seconds[implied.label][decision.action] += held
            judged += held
            right += held * (decision.action == implied.label)
            acting_now += held * critical(implied)
            left += held * missed(decision.held_level(), implied)
        return {'seconds': seconds, 'judged_seconds': judged, 'right_seconds': right,
                'critical_seconds': acting_now, 'missed_critical_seconds': left}

    def _holds_under_truth(self, end: Optional[float]) -> List[Tuple[Decided, Truth, float]]:
        """
        Split every decision's hold at each truth sample within it: (decision, truth, seconds).

        Truth is taken in stamp order (a bag may hold it out of order); time before the first
        truth sample is not judged.
        """
        truth = sorted(self.truth, key=lambda sample: sample.stamp)
        stamps = [sample.stamp for sample in truth]
        pieces = []
        for decision, held in self.decision_holds(end):
            start, until = decision.stamp, decision.stamp + held
            cuts = ([start] + stamps[bisect_right(stamps, start):bisect_left(stamps, until)]
                    + [until])
            for begin, stop in zip(cuts, cuts[1:]):
                latest = bisect_right(stamps, begin) - 1
                if latest >= 0:
                    pieces.append((decision, truth[latest], stop - begin))
        return pieces

    def urgency_mae(self) -> float:
        """Return the mean absolute error of predicted urgency against the latest truth."""
        errors = []
        for pred in self.predictions:
            truth = latest_before(self.truth, pred.stamp)
            if truth is not None:
                errors.append(abs(pred.urgency - truth.urgency))
        return sum(errors) / len(errors) if errors else math.nan

    def summary(self, thresholds: Optional[Thresholds] = None) -> dict:
        """Return a JSON-ready summary of the run (decisions against truth given thresholds)."""
        stamps = [s.stamp for s in self.truth] + [p.stamp for p in self.predictions]
        end = self.predictions[-1].stamp if self.predictions else None
        judged = {} if thresholds is None or not self.truth else {
            'decisions_against_truth': self.against_truth(thresholds, end)}
        return {
            'start': min(stamps) if stamps else 0.0,
            'predictions': len(self.predictions),
            # the agent republishes its decision; count the changes of action
            'decision_changes': sum(a.action != b.action for a, b in
                                    zip(self.decisions, self.decisions[1:])),
            'truth_samples': len(self.truth),
            'onsets': [vars(o) for o in self.onsets()],
            'decision_seconds': self.decision_durations(end),
            'urgency_mae': self.urgency_mae(),
            **judged,
        }


def against_truth_lines(judged: dict) -> List[str]:
    """Lines of the decisions-against-truth table: seconds per implied level and decision."""
    total = judged['judged_seconds']
    share = judged['right_seconds'] / total if total else math.nan
    lines = [f"Decided as the truth implies {judged['right_seconds']:.1f} of {total:.1f} s "
             f"({share:.0%}); critical {judged['critical_seconds']:.1f} s, of which missed "
             f"{judged['missed_critical_seconds']:.1f} s (the robot below "
             'schedule_maintenance, asking or not).', '',
             '| truth implies \\ decided [s] | ' + ' | '.join(ACTIONS) + ' |',
             '|---|' + '---|' * len(ACTIONS)]
    lines += [f'| {level} | ' + ' | '.join(f'{row[a]:.1f}' for a in ACTIONS) + ' |'
              for level, row in judged['seconds'].items()]
    return lines


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
