"""The agent's Inspect action: the windows one goal gathers, and its result."""
import threading
from typing import List, Tuple

from softmaint_core.decisions import Decision, PredictionSummary
from softmaint_core.inspection import aggregate, considered_decision
from softmaint_core.settings import ActionSettings, DEFAULT_ACTIONS, Thresholds
from softmaint_interfaces.action import Inspect


class Inspection:
    """Predictions gathered for one inspect goal, filled by the prediction callback."""

    def __init__(self):
        self.summaries: List[PredictionSummary] = []
        self.changed = threading.Condition()

    def add(self, summary: PredictionSummary) -> None:
        """
        Record one window and wake the goal's thread.

        Windows of a model with other classes (reloaded during the inspection) are left out:
        their probabilities cannot be averaged with the first model's.
        """
        with self.changed:
            if self.summaries and _classes(summary) != _classes(self.summaries[0]):
                return
            self.summaries.append(summary)
            self.changed.notify_all()

    def wait_beyond(self, seen: int, timeout: float) -> List[PredictionSummary]:
        """Wait until more than `seen` windows arrived or `timeout` passed; return a copy."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.summaries) > seen, timeout)
            return list(self.summaries)


def _classes(summary: PredictionSummary):
    return summary.fatigue_classes, summary.damage_classes


def inspection_numbers(summaries: List[PredictionSummary],
                       elapsed: float) -> Tuple[Inspect.Result, str]:
    """Fill the result numbers over `summaries` (at least one); return them and a sentence."""
    n, means = len(summaries), aggregate(summaries)
    result = Inspect.Result(windows_seen=n, mean_urgency=means.urgency,
                            max_urgency=max(s.urgency for s in summaries),
                            mean_uncertainty=means.uncertainty,
                            fatigue_probs=list(means.fatigue_probs),
                            damage_probs=list(means.damage_probs))
    fatigue = max(zip(result.fatigue_probs, summaries[0].fatigue_classes))
    damage = max(zip(result.damage_probs, summaries[0].damage_classes))
    text = (f'Inspected {n} windows over {elapsed:.1f} s: urgency {result.mean_urgency:.2f} '
            f'on average (max {result.max_urgency:.2f}), uncertainty '
            f'{result.mean_uncertainty:.2f}; most likely fatigue {fatigue[1]} '
            f'(p={fatigue[0]:.2f}) and damage {damage[1]} (p={damage[0]:.2f}).')
    return result, text


def inspection_result(summaries: List[PredictionSummary], thresholds: Thresholds,
                      elapsed: float, actions: ActionSettings = DEFAULT_ACTIONS
                      ) -> Tuple[Inspect.Result, Decision]:
    """Return the result of a completed inspection and its considered decision."""
    result, text = inspection_numbers(summaries, elapsed)
    decision = considered_decision(summaries, thresholds, actions)
    result.summary = f'{text} Decision: {decision.action.label}. {decision.reason}'
    return result, decision


def partial_result(seen: List[PredictionSummary], elapsed: float, why: str) -> Inspect.Result:
    """Return the result of an inspection that ended without a decision, saying why."""
    if not seen:
        return Inspect.Result(summary=f'No decision: {why}; no window arrived.')
    result, text = inspection_numbers(seen, elapsed)
    result.summary = f'No decision: {why}. {text}'
    return result
