"""
The maintenance agent's decision pipeline, ROS-free: prediction -> policy input -> decision.

`AgentCore` owns the policy state, the current decision and the watchdog. The agent node feeds
it the predictions it receives and its watchdog ticks; offline bag evaluation feeds it the
predictions of a replayed bag and the tick times in between (`watch_until`), so live and
offline decide by the same code and cannot drift apart. `summarise` is the one way a
prediction (a postprocess.Prediction or a MaintenancePrediction message: the same fields)
becomes the policy's input.

    window --WindowAssembler--> model inputs --StudentModel--> Prediction
           --summarise--> PredictionSummary --AgentCore--> Decision (changed or not)
"""
from dataclasses import dataclass
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .decisions import (acknowledge, decide, Decision, new_request_id, PolicyState,
                        PredictionSummary, stale_decision)
from .settings import Action, ActionSettings, DEFAULT_ACTIONS, Thresholds
from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
from .watchdog import stale_age, stale_due

WATCHDOG_TICK = 0.1      # [s] period of the agent node's watchdog timer
SAFE_ACTIONS = (Action.REQUEST_ASSISTANCE.label, Action.REDUCE_WORKLOAD.label)


def safe_action_of(value: str) -> Action:
    """Return the watchdog's safe action named `value`; raise ValueError for another name."""
    if value not in SAFE_ACTIONS:
        raise ValueError(f'stale_action must be one of {SAFE_ACTIONS}, got {value!r}')
    return Action[value.upper()]


@dataclass(frozen=True)
class AgentSettings:
    """What the agent decides with: the agent node's parameters, or a parameter file's."""

    thresholds: Thresholds = Thresholds()
    actions: ActionSettings = DEFAULT_ACTIONS
    stale_timeout: float = 3.0       # [s] without a prediction before the safe decision
    startup_grace: float = 5.0       # [s] more for the first prediction (a whole window first)
    stale_action: Action = Action.REQUEST_ASSISTANCE


@dataclass(frozen=True)
class Step:
    """A decision the agent took, and whether it differs from the one before."""

    decision: Decision
    changed: bool               # publish, log and act on it
    became_stale: bool = False  # the watchdog fired for the first time since a prediction


@dataclass(frozen=True)
class OpenRequest:
    """An open assistance request and what the person answering it needs to see."""

    request_id: str
    opened: float                       # [s] agent clock when the request opened
    updated: float                      # [s] the newest decision that kept it open
    priority: int
    reasons: Tuple[str, ...]            # reason codes
    reason: str                         # the decision's sentence
    candidates: Tuple[str, ...]         # actions the prediction set calls for
    level: str                          # level held while asking
    evidence: Dict[str, str]            # the newest window's numbers


def summarise(prediction, available: Sequence[str], modalities: int,
              fatigue_classes: Sequence[str] = FATIGUE_LEVELS,
              damage_classes: Sequence[str] = DAMAGE_TYPES) -> PredictionSummary:
    """
    Policy input of a prediction; validated (raises ValueError).

    Numbers pass through float32 like the MaintenancePrediction fields, so a prediction
    decided offline compares the same values against the thresholds as it would live.
    """
    def f32(values):
        return tuple(float(v) for v in np.asarray(values, np.float32))

    summary = PredictionSummary(
        urgency=f32([prediction.urgency])[0], uncertainty=f32([prediction.uncertainty])[0],
        urgency_std=f32([prediction.urgency_std])[0],
        fatigue_probs=f32(prediction.fatigue_probs), damage_probs=f32(prediction.damage_probs),
        fatigue_set=tuple(int(i) for i in prediction.fatigue_set),
        damage_set=tuple(int(i) for i in prediction.damage_set),
        fatigue_classes=tuple(fatigue_classes), damage_classes=tuple(damage_classes),
        available=tuple(available), modalities=modalities)
    summary.validate()
    return summary


class AgentCore:
    """Policy state, current decision and watchdog of one agent."""

    def __init__(self, settings: AgentSettings, started: float,
                 make_request_id: Callable[[], str] = new_request_id):
        self.settings = settings
        self.started = started             # [s] the watchdog counts from here
        self.state = PolicyState()
        self.current: Optional[Decision] = None
        self.last_prediction: Optional[float] = None
        self.stale = False
        self._make_request_id = make_request_id
        self._last_tick = -math.inf        # index of the last tick watch_until ran
        self._request_times = ('', 0.0, 0.0)   # (request id, opened, updated) [s]

    def predict(self, now: float, summary: PredictionSummary) -> Step:
        """Decide on a prediction received at `now`."""
        self.last_prediction, self.stale = now, False
        decision, self.state = decide(summary, self.settings.thresholds, self.state,
                                      self._make_request_id, self.settings.actions)
        return self._take(decision, now)

    def _follow_clock(self, now: float) -> None:
        """Start a new timeline when the clock went back (restarted simulation, looped bag)."""
        if now < self.started or (self.last_prediction is not None
                                  and now < self.last_prediction):
            self.started, self.last_prediction, self._last_tick = now, None, -math.inf

    def watch(self, now: float) -> Optional[Step]:
        """One watchdog tick at `now`: the safe decision while predictions are stale."""
        self._follow_clock(now)
        s = self.settings
        age = stale_age(self.last_prediction, self.started, now, s.stale_timeout,
                        s.startup_grace)
        if age is None:
            return None
        became_stale, self.stale = not self.stale, True
        decision, self.state = stale_decision(self.state, s.thresholds, age, s.stale_timeout,
                                              s.stale_action, self._make_request_id,
                                              s.actions)
        step = self._take(decision, now)
        return Step(step.decision, step.changed, became_stale)

    def watch_until(self, now: float) -> List[Tuple[float, Step]]:
        """
        Run the watchdog ticks a node would have run up to `now` (for a replay).

        Ticks are the multiples of WATCHDOG_TICK from the stale deadline on, each run once.
        """
        self._follow_clock(now)
        s = self.settings
        due = stale_due(self.last_prediction, self.started, s.stale_timeout, s.startup_grace)
        tick = max(math.ceil(due / WATCHDOG_TICK - 1e-9), self._last_tick + 1)
        steps = []
        while tick * WATCHDOG_TICK <= now:
            steps.append((tick * WATCHDOG_TICK, self.watch(tick * WATCHDOG_TICK)))
            self._last_tick = tick
            tick += 1
        return steps

    def acknowledge(self, action: Action, operator: str, request_id: str) -> Step:
        """Apply an operator's answer to the open request."""
        decision, self.state = acknowledge(self.state, self.settings.thresholds, action,
                                           operator, request_id, self.settings.actions)
        return self._take(decision)

    def open_request(self) -> Optional[OpenRequest]:
        """Return the open assistance request with its context, or None."""
        request_id, opened, updated = self._request_times
        if not self.state.request_id or request_id != self.state.request_id:
            return None
        decision = self.current
        candidates = decision.evidence.get('candidates', '')
        return OpenRequest(request_id, opened, updated, decision.priority,
                           self.state.request_reasons, decision.reason,
                           tuple(candidates.split(',')) if candidates else (),
                           self.state.level.label, dict(decision.evidence))

    def _take(self, decision: Decision, now: Optional[float] = None) -> Step:
        changed = self.current is None or decision.key != self.current.key
        self.current = decision
        if now is not None and self.state.request_id:
            request_id, opened, _ = self._request_times
            if request_id != self.state.request_id:
                opened = now
            self._request_times = (self.state.request_id, opened, now)
        return Step(decision, changed)
