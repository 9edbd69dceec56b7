"""
Maintenance decisions: from calibrated predictions to actions, with hysteresis.

Pure and ROS-free: the agent node feeds it one PredictionSummary per window and publishes the
Decision it returns; tests drive it window by window.

Per window (`assess`), action-level abstention: every state the prediction holds possible
(each class of the fatigue and damage conformal sets, each urgency level the band
urgency +- urgency_band * urgency_std reaches) gets the level the policy takes for it
  fatigue   low -> continue_monitoring, medium -> reduce_workload, high -> schedule_maintenance
  damage    none -> continue_monitoring, any damage type -> schedule_maintenance
  urgency   >= reduce_urgency, schedule_urgency, critical_urgency -> reduce_workload,
            schedule_maintenance, immediate_shutdown
  (the highest of the three), and the window calls for the set of those candidate levels.
When they agree, that is the level. When they differ, the safest (highest) is taken, unless
they span ambiguity_spread levels or more, or a shutdown is possible but not certain: then the
choice matters and a human is needed (request_assistance, while the level holds the safest
candidate, or the highest below a shutdown). Fewer than min_modalities available inputs, or
stale predictions, also ask. The same mapping applied to a window's true labels is the decision
the ground truth implies (`ground_truth_action`), which evaluations compare against.

Over windows (`decide`), the level escalates after escalate_windows consecutive windows above it
(to the lowest level all of them called for) and de-escalates after deescalate_windows
consecutive windows below it; immediate_shutdown needs no confirmation and is latched: it holds
whatever later windows call for, and opens a request (`shutdown_latched`) whose answer by an
operator is the only way back, as resetting an emergency stop takes a person. An assistance request
opens after escalate_windows windows with a reason (at once when urgency is critical or
predictions are stale) and is withdrawn after deescalate_windows windows without one. An
operator's answer (`acknowledge`) sets the level and mutes the answered reasons while they last.

What the actions mean where the robot works (`ActionSettings`, set per application profile):
`shutdown_mode` says what immediate_shutdown does there (stop in place, surface, retract from
the patient, stow and hold), named in the decision's reason and evidence. When the humans who
answer assistance requests are further away than the robot can wait
(assistance_latency > max_assistance_latency, e.g. a ground station), the robot acts on its own
instead of asking: the level rises to at least `autonomous_action` (to immediate_shutdown when
urgency is critical but unconfirmed), through the same hysteresis, and the decision says so.
"""

from dataclasses import dataclass, replace
import math
from typing import Callable, Dict, FrozenSet, Tuple
import uuid

from .settings import (Action, ActionSettings, DEFAULT_ACTIONS, LEVELS, Thresholds,
                       URGENT_REASONS)
from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS, policy_class_error


@dataclass(frozen=True)
class PredictionSummary:
    """What the policy needs of one window's prediction (and of the window's inputs)."""

    urgency: float
    uncertainty: float
    fatigue_probs: Tuple[float, ...]
    damage_probs: Tuple[float, ...]
    fatigue_set: Tuple[int, ...]
    damage_set: Tuple[int, ...]
    available: Tuple[str, ...]          # modalities that were available in the window
    modalities: int                     # modalities the model takes
    urgency_std: float = 0.0
    fatigue_classes: Tuple[str, ...] = FATIGUE_LEVELS
    damage_classes: Tuple[str, ...] = DAMAGE_TYPES

    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot come from a sound prediction."""
        for name in ('urgency', 'uncertainty'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if not (math.isfinite(self.urgency_std) and self.urgency_std >= 0):
            raise ValueError(f'urgency_std must be finite and >= 0, got {self.urgency_std}')
        classes_error = policy_class_error(self.fatigue_classes, self.damage_classes)
        if classes_error:
            raise ValueError(classes_error)
        for head in ('fatigue', 'damage'):
            probs = getattr(self, f'{head}_probs')
            classes = getattr(self, f'{head}_classes')
            members = getattr(self, f'{head}_set')
            if len(probs) != len(classes):
                raise ValueError(f'{head}_probs must hold one probability per class of '
                                 f'{classes}')
            if not all(0.0 <= p <= 1.0 for p in probs) or abs(sum(probs) - 1.0) > 1e-3:
                raise ValueError(f'{head}_probs must be probabilities summing to 1, got {probs}')
            if not members or not all(0 <= i < len(classes) for i in members):
                raise ValueError(f'{head}_set must be non-empty indices into {head}_classes, '
                                 f'got {members}')
        if not 0 < self.modalities or len(self.available) > self.modalities:
            raise ValueError(f'{len(self.available)} available of {self.modalities} modalities')

    def top(self, head: str) -> Tuple[str, float]:
        """Most likely class of `head` ('fatigue' or 'damage') and its probability."""
        probs = getattr(self, f'{head}_probs')
        best = max(range(len(probs)), key=probs.__getitem__)
        return getattr(self, f'{head}_classes')[best], float(probs[best])


@dataclass(frozen=True)
class Assessment:
    """What one window calls for, before hysteresis."""

    target: Action                      # a level (continue .. immediate_shutdown)
    driver: str                         # why that level
    reasons: Dict[str, str]             # assistance reason code -> sentence fragment
    candidates: FrozenSet[Action] = frozenset()   # levels the prediction set calls for


@dataclass(frozen=True)
class PolicyState:
    """Hysteresis memory between windows."""

    level: Action = Action.CONTINUE_MONITORING
    up_windows: int = 0                 # consecutive windows above the level
    up_floor: Action = Action.CONTINUE_MONITORING    # lowest level those windows called for
    down_windows: int = 0               # consecutive windows below the level
    down_ceiling: Action = Action.CONTINUE_MONITORING  # highest level those windows called for
    assist_windows: int = 0             # consecutive windows with an assistance reason
    clear_windows: int = 0              # consecutive windows without one, request open
    request_id: str = ''                # open assistance request ('' = none)
    request_reasons: Tuple[str, ...] = ()           # reason codes of the open request
    muted: FrozenSet[str] = frozenset()  # reasons an operator answered, muted while they last
    driver: str = 'no prediction yet'   # latest driver of the level


@dataclass(frozen=True)
class Decision:
    """One maintenance decision, ready to publish and log."""

    action: Action
    priority: int                       # 0 (routine) .. 3 (critical)
    reason: str                         # one sentence
    evidence: Dict[str, str]
    workload_limit: float
    request_id: str = ''
    basis: str = 'prediction'           # prediction, stale, operator or inspection

    @property
    def key(self) -> tuple:
        """Return what must differ for this to count as a new decision."""
        return (self.action, self.request_id, round(self.workload_limit, 6), self.basis)


def new_request_id() -> str:
    """Return a fresh, unique assistance request id."""
    return 'req-' + uuid.uuid4().hex[:12]


def _fraction(x: float) -> str:
    return f'{x:.2f}'


FATIGUE_ACTIONS = {'low': Action.CONTINUE_MONITORING, 'medium': Action.REDUCE_WORKLOAD,
                   'high': Action.SCHEDULE_MAINTENANCE}


def urgency_action(urgency: float, t: Thresholds) -> Action:
    """Level an urgency calls for on its own."""
    for threshold, level in ((t.critical_urgency, Action.IMMEDIATE_SHUTDOWN),
                             (t.schedule_urgency, Action.SCHEDULE_MAINTENANCE),
                             (t.reduce_urgency, Action.REDUCE_WORKLOAD)):
        if urgency >= threshold:
            return level
    return Action.CONTINUE_MONITORING


def state_action(fatigue: str, damage: str, urgency_level: Action) -> Action:
    """Level the policy takes for one state of the arm (a fatigue class, a damage class)."""
    damage_level = (Action.CONTINUE_MONITORING if damage == 'none'
                    else Action.SCHEDULE_MAINTENANCE)
    return max(FATIGUE_ACTIONS[fatigue], damage_level, urgency_level)


def ground_truth_action(fatigue: str, damage: str, urgency: float, t: Thresholds) -> Action:
    """Level the ground truth of a window implies (what a perfect prediction would do)."""
    return state_action(fatigue, damage, urgency_action(urgency, t))


def point_action(s: PredictionSummary, t: Thresholds) -> Action:
    """
    Level the prediction's point estimate calls for: most probable classes, mean urgency.

    Not what the policy does (it weighs the whole prediction set, `assess`); the yardstick
    that tells a model's errors from the policy's caution in the decision figures.
    """
    def most_probable(classes, probs):
        return max(zip(probs, classes))[1]
    return ground_truth_action(most_probable(s.fatigue_classes, s.fatigue_probs),
                               most_probable(s.damage_classes, s.damage_probs), s.urgency, t)


def urgency_band(s: PredictionSummary, t: Thresholds) -> Tuple[float, float]:
    """Urgencies the prediction holds possible: mean +- urgency_band ensemble stds."""
    half = t.urgency_band * s.urgency_std
    return max(0.0, s.urgency - half), min(1.0, s.urgency + half)


def candidate_actions(s: PredictionSummary, t: Thresholds) -> FrozenSet[Action]:
    """
    Levels the policy would take for the members of the prediction set.

    Every fatigue class of the fatigue conformal set, every damage class of the damage set and
    every urgency level the urgency band reaches is a state the window may be in.
    """
    low, high = (urgency_action(u, t) for u in urgency_band(s, t))
    return frozenset(state_action(s.fatigue_classes[f], s.damage_classes[d], Action(level))
                     for f in s.fatigue_set for d in s.damage_set
                     for level in range(low, high + 1))


def _labels(actions) -> str:
    return ', '.join(a.label for a in sorted(actions))


def _describe(s: PredictionSummary, t: Thresholds) -> str:
    low, high = urgency_band(s, t)
    return (f'fatigue {{{",".join(s.fatigue_classes[i] for i in s.fatigue_set)}}}, damage '
            f'{{{",".join(s.damage_classes[i] for i in s.damage_set)}}}, urgency '
            f'{_fraction(low)}-{_fraction(high)}')


def assess(summary: PredictionSummary, thresholds: Thresholds,
           actions: ActionSettings = DEFAULT_ACTIONS) -> Assessment:
    """Level and assistance reasons that one window calls for (no hysteresis)."""
    s, t = summary, thresholds
    candidates = candidate_actions(s, t)
    possible = f'{_describe(s, t)} call for {_labels(candidates)}'
    reasons = {}
    if Action.IMMEDIATE_SHUTDOWN in candidates and len(candidates) > 1:
        # stopping or not is always worth a human's answer
        target = max(candidates - {Action.IMMEDIATE_SHUTDOWN})
        reasons['critical_unconfirmed'] = f'a shutdown is possible but not certain ({possible})'
        driver = possible
    elif max(candidates) - min(candidates) >= t.ambiguity_spread:
        target = max(candidates)
        reasons['ambiguous_action'] = f'the possible actions differ ({possible})'
        driver = f'{possible}, holding the safest'
    else:
        target = max(candidates)
        driver = possible if len(candidates) == 1 else f'{possible}, taking the safest'
    if len(s.available) < t.min_modalities:
        reasons['degraded_inputs'] = (f'only {len(s.available)} of {s.modalities} modalities '
                                      f'available (need {t.min_modalities})')
    if reasons and not actions.assistance_available:
        return _acting_alone(target, driver, reasons, candidates, actions)
    return Assessment(target, driver, reasons, candidates)


def _acting_alone(target: Action, driver: str, reasons: Dict[str, str],
                  candidates: FrozenSet[Action], actions: ActionSettings) -> Assessment:
    """Instead of asking a human who cannot answer in time, raise the level and say why."""
    alone = (Action.IMMEDIATE_SHUTDOWN if 'critical_unconfirmed' in reasons
             else Action[actions.autonomous_action.upper()])
    if alone <= target:
        return Assessment(target, driver, {}, candidates)
    return Assessment(alone, f'acting without assistance ({"; ".join(reasons.values())}): '
                      f'an answer takes {actions.assistance_latency:g} s > '
                      f'{actions.max_assistance_latency:g} s', {}, candidates)


def _answered(assessment: Assessment, state: PolicyState) -> Assessment:
    """While an operator's answer to an ambiguity holds, their level stands where possible."""
    if 'ambiguous_action' not in assessment.reasons or 'ambiguous_action' not in state.muted:
        return assessment
    level = min(max(state.level, min(assessment.candidates)), max(assessment.candidates))
    return replace(assessment, target=level,
                   driver=f'{assessment.driver}; the answered request holds {level.label}')


def _step_level(assessment: Assessment, state: PolicyState,
                t: Thresholds) -> Tuple[PolicyState, str]:
    """Apply hysteresis to the level; return the new state and why it is at that level."""
    target, driver = assessment.target, assessment.driver
    settled = {'up_windows': 0, 'down_windows': 0}
    if state.level == Action.IMMEDIATE_SHUTDOWN:
        return (replace(state, **settled), driver if target == state.level else
                f'held until an operator lifts it (latest: {driver})')
    if target == Action.IMMEDIATE_SHUTDOWN or target == state.level:
        return replace(state, level=target, **settled), driver
    if target > state.level:
        floor = min(state.up_floor, target) if state.up_windows else target
        up = state.up_windows + 1
        if up >= t.escalate_windows:
            return (replace(state, level=floor, **settled),
                    f'escalated after {up} consecutive windows at or above it '
                    f'(latest: {driver})')
        return (replace(state, up_windows=up, up_floor=floor, down_windows=0),
                f'{target.label} called for ({driver}) in {up} of {t.escalate_windows} '
                'windows needed to escalate')
    ceiling = max(state.down_ceiling, target) if state.down_windows else target
    down = state.down_windows + 1
    if down >= t.deescalate_windows:
        return (replace(state, level=ceiling, **settled),
                f'de-escalated after {down} consecutive windows below {state.level.label} '
                f'(latest: {driver})')
    return (replace(state, down_windows=down, down_ceiling=ceiling, up_windows=0),
            f'held while {target.label} is called for ({driver}) in {down} of '
            f'{t.deescalate_windows} windows needed to de-escalate')


def _with_latch(reasons: Dict[str, str], state: PolicyState) -> Dict[str, str]:
    """Add the open request of a shut-down arm: an operator's answer is what lifts it."""
    if state.level != Action.IMMEDIATE_SHUTDOWN:
        return reasons
    return {**reasons, 'shutdown_latched': 'the arm is shut down until an operator lifts it '
            '(answer with the level it may work at)'}


def _step_assistance(reasons: Dict[str, str], state: PolicyState, t: Thresholds,
                     make_request_id: Callable[[], str]) -> PolicyState:
    """Open, keep or withdraw the assistance request; answered reasons stay muted."""
    muted = state.muted & frozenset(reasons)
    active = tuple(code for code in reasons if code not in muted)
    if state.request_id:
        if active:
            return replace(state, clear_windows=0, request_reasons=active, muted=muted)
        clear = state.clear_windows + 1
        if clear >= t.deescalate_windows:
            return replace(state, clear_windows=0, assist_windows=0, request_id='',
                           request_reasons=(), muted=muted)
        return replace(state, clear_windows=clear, muted=muted)
    if not active:
        return replace(state, assist_windows=0, muted=muted)
    streak = state.assist_windows + 1
    if streak >= t.escalate_windows or set(active) & set(URGENT_REASONS):
        return replace(state, assist_windows=0, clear_windows=0, request_id=make_request_id(),
                       request_reasons=active, muted=muted)
    return replace(state, assist_windows=streak, muted=muted)


def _compose(state: PolicyState, t: Thresholds, reasons: Dict[str, str], driver: str,
             evidence: Dict[str, str], basis: str,
             actions: ActionSettings = DEFAULT_ACTIONS) -> Decision:
    """Turn a state into the decision to publish."""
    evidence = {**evidence, 'level': state.level.label,
                'escalation': f'{state.up_windows}/{t.escalate_windows}',
                'deescalation': f'{state.down_windows}/{t.deescalate_windows}',
                'assistance_reasons': ','.join(reasons) or 'none'}
    if state.level == Action.IMMEDIATE_SHUTDOWN or not state.request_id:
        level = state.level     # a shutdown carries the request that lifts it
        return Decision(level, LEVELS.index(level), f'{decision_title(level, actions)}: {driver}.',
                        with_shutdown_evidence(evidence, level, actions), t.workload(level),
                        state.request_id, basis)
    present = [reasons[code] for code in state.request_reasons if code in reasons]
    why = '; '.join(present) or (f'raised for {", ".join(state.request_reasons)}, '
                                 f'{state.clear_windows} of {t.deescalate_windows} clear windows '
                                 'needed to withdraw it')
    critical = 'critical_unconfirmed' in state.request_reasons
    return Decision(Action.REQUEST_ASSISTANCE, 3 if critical else 2,
                    f'Request assistance: {why}; level {state.level.label}.', evidence,
                    min(t.workload(state.level), t.assistance_workload), state.request_id,
                    basis)


def _sentence(label: str) -> str:
    return label.replace('_', ' ').capitalize()


def decision_title(level: Action, actions: ActionSettings) -> str:
    """Start of a decision's reason: the action, and what a shutdown means here if not a stop."""
    title = _sentence(level.label)
    if level == Action.IMMEDIATE_SHUTDOWN and actions.shutdown_mode != 'stop':
        title += f' ({actions.shutdown_meaning})'
    return title


def with_shutdown_evidence(evidence: Dict[str, str], level: Action,
                           actions: ActionSettings) -> Dict[str, str]:
    """Add what a shutdown means here to the evidence of a shutdown decision."""
    if level != Action.IMMEDIATE_SHUTDOWN:
        return evidence
    return {**evidence, 'shutdown_mode': actions.shutdown_mode}


def evidence_of(summary: PredictionSummary) -> Dict[str, str]:
    """Return the numbers behind a decision as strings (diagnostic_msgs/KeyValue)."""
    s = summary
    fatigue, p_fatigue = s.top('fatigue')
    damage, p_damage = s.top('damage')
    return {'urgency': f'{s.urgency:.3f}', 'urgency_std': f'{s.urgency_std:.3f}',
            'uncertainty': f'{s.uncertainty:.3f}',
            'fatigue': f'{fatigue} p={p_fatigue:.3f}',
            'fatigue_set': ','.join(s.fatigue_classes[i] for i in s.fatigue_set),
            'damage': f'{damage} p={p_damage:.3f}',
            'damage_set': ','.join(s.damage_classes[i] for i in s.damage_set),
            'inputs': f'{len(s.available)}/{s.modalities} {",".join(s.available)}'.strip()}


def decide(summary: PredictionSummary, thresholds: Thresholds, state: PolicyState,
           make_request_id: Callable[[], str] = new_request_id,
           actions: ActionSettings = DEFAULT_ACTIONS) -> Tuple[Decision, PolicyState]:
    """Decision for the newest window and the state to pass with the next one."""
    summary.validate()
    assessment = _answered(assess(summary, thresholds, actions), state)
    state, driver = _step_level(assessment, state, thresholds)
    state = _step_assistance(_with_latch(assessment.reasons, state), state, thresholds,
                             make_request_id)
    state = replace(state, driver=driver)
    evidence = {**evidence_of(summary), 'target': assessment.target.label,
                'candidates': ','.join(a.label for a in sorted(assessment.candidates))}
    return (_compose(state, thresholds, assessment.reasons, driver, evidence, 'prediction',
                     actions), state)


def stale_decision(state: PolicyState, thresholds: Thresholds, age: float, timeout: float,
                   safe_action: Action,
                   make_request_id: Callable[[], str] = new_request_id,
                   actions: ActionSettings = DEFAULT_ACTIONS) -> Tuple[Decision, PolicyState]:
    """
    Safe decision while predictions are stale: ask a human, or reduce the workload.

    Never relaxes the current level: a scheduled maintenance or a shutdown holds. Without
    assistance in reach, reduce_workload replaces the request.
    """
    if safe_action not in (Action.REQUEST_ASSISTANCE, Action.REDUCE_WORKLOAD):
        raise ValueError(f'safe action must be request_assistance or reduce_workload, '
                         f'not {safe_action.label}')
    why = f'no prediction for {age:.1f} s (timeout {timeout:.1f} s)'
    evidence = {'prediction_age': f'{age:.3f}', 'stale_timeout': f'{timeout:.3f}'}
    if safe_action == Action.REQUEST_ASSISTANCE and actions.assistance_available:
        reasons = _with_latch({'stale_predictions': why}, state)
        state = _step_assistance(reasons, state, thresholds, make_request_id)
        return _compose(state, thresholds, reasons, why, evidence, 'stale', actions), state
    held = replace(state, level=max(state.level, Action.REDUCE_WORKLOAD))
    return _compose(held, thresholds, {}, f'{why}, holding until predictions resume',
                    evidence, 'stale', actions), state


def acknowledge(state: PolicyState, thresholds: Thresholds, action: Action, operator: str,
                request_id: str, actions: ActionSettings = DEFAULT_ACTIONS
                ) -> Tuple[Decision, PolicyState]:
    """
    Apply an operator's answer to the open request: their action becomes the level.

    The reasons of the answered request stay muted while they last, so the same condition does
    not raise a new request; a new reason does.
    """
    if action not in LEVELS:
        raise ValueError(f'the operator must choose one of '
                         f'{", ".join(f"{int(a)} ({a.label})" for a in LEVELS)}, not {action!r}')
    state = replace(state, level=Action(action), up_windows=0, down_windows=0,
                    assist_windows=0, clear_windows=0, request_id='', request_reasons=(),
                    # a shutdown confirmed by the operator opens its request again at once
                    muted=state.muted | (frozenset(state.request_reasons)
                                         - {'shutdown_latched'}),
                    driver=f'operator {operator} chose it answering {request_id}')
    return _compose(state, thresholds, {}, state.driver, {'operator': operator,
                                                          'answered': request_id},
                    'operator', actions), state
