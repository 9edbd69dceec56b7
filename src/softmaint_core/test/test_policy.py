"""Maintenance policy: each rule, hysteresis timing, assistance requests, watchdog, validation."""
from dataclasses import fields, replace
import itertools
import math

import pytest
from softmaint_core.decisions import (acknowledge, assess, candidate_actions, decide,
                                      ground_truth_action, point_action, PolicyState,
                                      PredictionSummary, stale_decision)
from softmaint_core.inspection import aggregate, considered_decision
from softmaint_core.settings import Action, ThresholdError, Thresholds
from softmaint_core.watchdog import stale_age, stale_due

ALL = ('camera', 'tactile', 'proprio', 'environment')
# Escalate after 3 windows, de-escalate after 5; ask when the possible actions span 2 levels.
T = Thresholds(escalate_windows=3, deescalate_windows=5, ambiguity_spread=2)


def window(urgency=0.1, uncertainty=0.1, fatigue=(0.9, 0.05, 0.05),
           damage=(0.9, 0.025, 0.025, 0.025, 0.025), fatigue_set=(0,), damage_set=(0,),
           available=ALL, urgency_std=0.0):
    return PredictionSummary(urgency=urgency, uncertainty=uncertainty, fatigue_probs=fatigue,
                             damage_probs=damage, fatigue_set=fatigue_set,
                             damage_set=damage_set, available=available, modalities=4,
                             urgency_std=urgency_std)


def ids():
    counter = itertools.count(1)
    return lambda: f'req-{next(counter)}'


def run(windows, state=None, thresholds=T, make_id=None):
    """Feed windows in order; return every decision and the final state."""
    state = state or PolicyState()
    make_id = make_id or ids()
    decisions = []
    for w in windows:
        decision, state = decide(w, thresholds, state, make_id)
        decisions.append(decision)
    return decisions, state


def actions(decisions):
    return [d.action for d in decisions]


C, R, S, X, A = (Action.CONTINUE_MONITORING, Action.REDUCE_WORKLOAD,
                 Action.SCHEDULE_MAINTENANCE, Action.IMMEDIATE_SHUTDOWN,
                 Action.REQUEST_ASSISTANCE)


@pytest.mark.parametrize('summary, target, driver', [
    (window(), C, 'fatigue {low}, damage {none}, urgency 0.10-0.10 call for continue_monitoring'),
    (window(urgency=0.45), R, 'urgency 0.45-0.45 call for reduce_workload'),
    (window(urgency=0.7), S, 'urgency 0.70-0.70 call for schedule_maintenance'),
    (window(fatigue_set=(1,)), R, 'fatigue {medium}'),
    (window(fatigue_set=(2,)), S, 'fatigue {high}'),
    (window(damage_set=(2,)), S, 'damage {crack_tear}'),
    (window(urgency=0.85, urgency_std=0.05), X, 'urgency 0.82-0.88 call for immediate_shutdown'),
    # the possible actions span one level: the safest, without asking
    (window(fatigue_set=(0, 1)), R, 'call for continue_monitoring, reduce_workload, taking the '
     'safest'),
])
def test_each_rule_sets_the_level_once_confirmed(summary, target, driver):
    decisions, state = run([summary] * 3)
    assert decisions[-1].action == target
    assert driver in decisions[-1].reason
    assert decisions[-1].priority == int(target)
    assert decisions[-1].workload_limit == T.workload(target)
    # only a shutdown carries a request: the one whose answer lifts it
    assert decisions[-1].request_id == ('req-1' if target == X else '')


def test_escalation_needs_consecutive_windows_and_takes_the_lowest_level():
    high, mid = window(urgency=0.7), window(urgency=0.5)
    decisions, state = run([high, high])
    assert actions(decisions) == [C, C]
    assert ('schedule_maintenance called for (fatigue {low}, damage {none}, urgency 0.70-0.70 '
            'call for schedule_maintenance) in 2 of 3 windows') in decisions[-1].reason
    decisions, state = run([window()], state)            # a calm window breaks the streak
    assert state.up_windows == 0
    decisions, state = run([high, mid, high], state)     # 3 above, lowest is reduce
    assert actions(decisions) == [C, C, R]
    assert 'escalated after 3 consecutive windows' in decisions[-1].reason
    decisions, _ = run([high] * 3, state)
    assert actions(decisions) == [R, R, S]


def test_deescalation_is_slower_and_takes_the_highest_level():
    _, state = run([window(urgency=0.7)] * 3)
    assert state.level == S
    calm, mid = window(), window(urgency=0.5)
    decisions, state = run([calm] * 4, state)
    assert actions(decisions) == [S] * 4
    assert 'held while continue_monitoring is called for' in decisions[-1].reason
    decisions, state = run([window(urgency=0.7)], state)  # one high window resets the count
    assert state.down_windows == 0
    decisions, state = run([calm, calm, mid, calm, calm], state)
    assert actions(decisions) == [S, S, S, S, R]
    assert 'de-escalated after 5 consecutive windows below schedule_maintenance' in \
        decisions[-1].reason


def test_critical_confident_shuts_down_at_once_and_holds():
    _, state = run([window()] * 2)
    decisions, state = run([window(urgency=0.9)], state)
    assert decisions[0].action == X and decisions[0].workload_limit == 0.0
    assert decisions[0].priority == 3
    assert decisions[0].request_id == 'req-1'            # the request that lifts it
    assert 'shutdown_latched' in state.request_reasons
    decisions, state = run([window()] * 2 * T.deescalate_windows, state)
    assert actions(decisions) == [X] * 2 * T.deescalate_windows   # latched: calm windows
    assert 'held until an operator lifts it' in decisions[-1].reason    # do not lift it
    assert {d.request_id for d in decisions} == {'req-1'}
    # every state the set holds possible calls for a shutdown: no need to ask
    decisions, _ = run([window(urgency=0.9, damage_set=(0, 2))] * 3)
    assert actions(decisions) == [X] * 3


def test_an_operator_lifts_a_shutdown_or_keeps_it_with_a_request_still_open():
    make_id = ids()
    decisions, state = run([window(urgency=0.9)], make_id=make_id)
    assert decisions[0].action == X and decisions[0].request_id == 'req-1'
    # the operator keeps it shut: the next window opens the request that lifts it again
    _, kept = acknowledge(state, T, Action.IMMEDIATE_SHUTDOWN, 'ada', 'req-1')
    decisions, kept = run([window()], kept, make_id=make_id)
    assert decisions[0].action == X and decisions[0].request_id == 'req-2'
    # after the repair the operator lifts it: from then on the usual hysteresis
    decision, lifted = acknowledge(kept, T, Action.SCHEDULE_MAINTENANCE, 'bo', 'req-2')
    assert decision.action == S and decision.basis == 'operator' and not lifted.request_id
    decisions, lifted = run([window()] * T.deescalate_windows, lifted, make_id=make_id)
    assert actions(decisions) == [S] * (T.deescalate_windows - 1) + [C]
    assert {d.request_id for d in decisions} == {''}


def test_a_possible_but_uncertain_shutdown_asks_a_human_at_once():
    decisions, state = run([window(urgency=0.78, urgency_std=0.1)])    # band 0.73-0.83
    d = decisions[0]
    assert d.action == A and d.priority == 3 and d.request_id == 'req-1'
    assert ('a shutdown is possible but not certain (fatigue {low}, damage {none}, urgency '
            '0.73-0.83 call for schedule_maintenance, immediate_shutdown)') in d.reason
    assert d.evidence['target'] == 'schedule_maintenance'   # the highest below a shutdown
    assert d.workload_limit == T.assistance_workload


def test_candidate_actions_are_the_policy_applied_to_each_possible_state():
    s = window(urgency=0.5, urgency_std=0.1, fatigue_set=(0, 2), damage_set=(0, 1))
    # urgency band 0.45-0.55: reduce only; fatigue high or damage -> schedule
    assert candidate_actions(s, T) == {R, S}
    assert candidate_actions(s, replace(T, urgency_band=2.0)) == {C, R, S}   # 0.30-0.70
    assert candidate_actions(window(urgency=0.5, urgency_std=0.1),
                             replace(T, urgency_band=0.0)) == {R}
    assert ground_truth_action('medium', 'none', 0.1, T) == R
    assert ground_truth_action('low', 'actuator_clog', 0.1, T) == S
    assert ground_truth_action('low', 'none', 0.85, T) == X
    # the point estimate ignores the sets: most probable classes, mean urgency
    assert point_action(s, T) == R
    assert point_action(window(fatigue=(0.2, 0.3, 0.5), fatigue_set=(0, 1, 2)), T) == S
    assert point_action(window(damage=(0.4, 0.6, 0.0, 0.0, 0.0)), T) == S
    # the default spread asks only about a shutdown; continue-or-schedule takes the safest
    relaxed = Thresholds()
    assessment = assess(window(damage_set=(0, 2)), relaxed)
    assert assessment.target == S and assessment.reasons == {}


@pytest.mark.parametrize('summary, code, fragment', [
    (window(damage_set=(0, 2)), 'ambiguous_action',
     'the possible actions differ (fatigue {low}, damage {none,crack_tear}, urgency 0.10-0.10 '
     'call for continue_monitoring, schedule_maintenance)'),
    (window(fatigue_set=(0, 2)), 'ambiguous_action', 'fatigue {low,high}'),
    (window(available=('proprio',)), 'degraded_inputs',
     'only 1 of 4 modalities available (need 2)'),
])
def test_assistance_reasons_open_a_request_after_confirmation(summary, code, fragment):
    make_id = ids()
    decisions, state = run([summary] * 3, make_id=make_id)
    assert actions(decisions) == [C, C, A]
    d = decisions[-1]
    assert d.request_id == 'req-1' and d.priority == 2 and fragment in d.reason
    assert d.evidence['assistance_reasons'] == code
    assert state.request_reasons == (code,)
    decisions, state = run([summary] * 10, state, make_id=make_id)   # the same one stays open
    assert {x.request_id for x in decisions} == {'req-1'}


def test_request_keeps_the_lower_workload_and_withdraws_slowly():
    _, state = run([window(urgency=0.7)] * 3)
    decisions, state = run([window(damage_set=(0, 1))] * 3, state)
    assert decisions[-1].action == A
    assert decisions[-1].workload_limit == T.maintenance_workload  # min(0.25, 0.5)
    decisions, state = run([window(urgency=0.7)] * 5, state)
    assert actions(decisions) == [A] * 4 + [S]
    assert '3 of 5 clear windows needed to withdraw it' in decisions[2].reason
    assert state.request_id == ''


def test_acknowledge_sets_the_level_and_mutes_the_answered_reason():
    ambiguous = window(damage_set=(0, 1))
    make_id = ids()
    decisions, state = run([ambiguous] * 3, make_id=make_id)
    decision, state = acknowledge(state, T, Action.REDUCE_WORKLOAD, 'ada', 'req-1')
    assert decision.action == R and decision.basis == 'operator'
    assert 'operator ada chose it answering req-1' in decision.reason
    decisions, state = run([ambiguous] * 4, state, make_id=make_id)
    assert actions(decisions) == [R] * 4                 # muted, the answer holds
    assert 'the answered request holds reduce_workload' in decisions[-1].reason
    decisions, state = run([window(available=('proprio',), damage_set=(0, 1))] * 3, state,
                           make_id=make_id)
    assert decisions[-1].action == A and decisions[-1].request_id == 'req-2'
    assert decisions[-1].evidence['assistance_reasons'] == 'ambiguous_action,degraded_inputs'
    decision, state = acknowledge(state, T, Action.CONTINUE_MONITORING, 'bo', 'req-2')
    decisions, state = run([window()] + [ambiguous] * 3, state, make_id=make_id)
    assert decisions[-1].request_id == 'req-3'          # it went away, so it counts again
    with pytest.raises(ValueError, match='must choose one of 0 .*not <Action.REQUEST'):
        acknowledge(state, T, Action.REQUEST_ASSISTANCE, 'ada', 'req-3')


def test_watchdog_age_and_safe_decisions():
    assert stale_age(None, started=10.0, now=12.0, timeout=3.0) is None
    assert stale_age(None, started=10.0, now=13.0, timeout=3.0) == pytest.approx(3.0)
    assert stale_age(20.0, started=10.0, now=22.0, timeout=3.0) is None
    assert stale_age(20.0, started=10.0, now=24.5, timeout=3.0) == pytest.approx(4.5)
    assert stale_age(20.0, started=10.0, now=5.0, timeout=3.0) is None   # clock reset
    # the first prediction may take a window longer; later ones may not
    assert stale_age(None, started=10.0, now=14.9, timeout=3.0, startup_grace=2.0) is None
    assert stale_age(None, started=10.0, now=15.0, timeout=3.0,
                     startup_grace=2.0) == pytest.approx(5.0)
    assert stale_age(20.0, started=10.0, now=23.0, timeout=3.0,
                     startup_grace=2.0) == pytest.approx(3.0)
    assert stale_due(None, started=10.0, timeout=3.0, startup_grace=2.0) == 15.0
    assert stale_due(20.0, started=10.0, timeout=3.0, startup_grace=2.0) == 23.0

    make_id = ids()
    d, state = stale_decision(PolicyState(), T, 4.0, 3.0, Action.REQUEST_ASSISTANCE, make_id)
    assert d.action == A and d.request_id == 'req-1' and d.basis == 'stale'
    assert 'no prediction for 4.0 s (timeout 3.0 s)' in d.reason
    d2, state = stale_decision(state, T, 5.0, 3.0, Action.REQUEST_ASSISTANCE, make_id)
    assert d2.request_id == 'req-1'                      # one request per stale spell

    d, same = stale_decision(PolicyState(), T, 4.0, 3.0, Action.REDUCE_WORKLOAD)
    assert d.action == R and d.workload_limit == T.reduced_workload
    assert same == PolicyState()                          # the level is not changed
    _, scheduled = run([window(urgency=0.7)] * 3)
    d, _ = stale_decision(scheduled, T, 4.0, 3.0, Action.REDUCE_WORKLOAD)
    assert d.action == S and d.workload_limit == T.maintenance_workload   # never relaxes
    with pytest.raises(ValueError, match='request_assistance or reduce_workload'):
        stale_decision(PolicyState(), T, 4.0, 3.0, Action.CONTINUE_MONITORING)


def test_decision_key_marks_changes():
    decisions, _ = run([window()] * 2 + [window(urgency=0.7)] * 3)
    keys = [d.key for d in decisions]
    assert keys[0] == keys[1] == keys[3] and keys[4] != keys[3]


def test_aggregate_and_considered_decision():
    windows = [window(urgency=0.1, damage_set=(0, 1)), window(urgency=0.3),
               window(urgency=0.2, damage_set=(0, 1), available=('camera', 'proprio'))]
    summary = aggregate(windows)
    assert summary.urgency == pytest.approx(0.2)
    assert summary.damage_set == (0, 1)                   # in 2 of 3 sets
    assert summary.available == ALL                       # each missing once only
    assert sum(summary.damage_probs) == pytest.approx(1.0)
    decision = considered_decision(windows, T)
    assert decision.action == A and decision.basis == 'inspection'
    assert 'over 3 windows' in decision.reason and decision.evidence['windows'] == '3'
    assert considered_decision([window(urgency=0.7)] * 2, T).action == S
    with pytest.raises(ValueError, match='at least one window'):
        aggregate([])


def test_aggregate_keeps_some_damage_that_most_windows_hold_possible():
    # three windows each add another damage type to {none}: no type has a majority, but "some
    # damage" does, so the inspection schedules maintenance as each window would have
    leak, crack = (0.88, 0.06, 0.02, 0.02, 0.02), (0.88, 0.02, 0.06, 0.02, 0.02)
    windows = [window(damage=leak, damage_set=(0, 1)), window(damage=crack, damage_set=(0, 2)),
               window(damage=leak, damage_set=(0, 3)), window()]
    summary = aggregate(windows)
    assert summary.damage_set == (0, 1)             # the most probable damage of the means
    default = Thresholds()                          # takes the safest of continue / schedule
    assert considered_decision(windows[:1], default).action == S
    assert considered_decision(windows, default).action == S
    # one window of four flagging damage is not a majority: {none} stands
    assert aggregate([window(damage_set=(0, 1))] + [window()] * 3).damage_set == (0,)


@pytest.mark.parametrize('bad, message', [
    ({'urgency': math.nan}, 'urgency must be in'),
    ({'uncertainty': 1.5}, 'uncertainty must be in'),
    ({'fatigue': (0.5, 0.5, 0.5)}, 'fatigue_probs must be probabilities summing to 1'),
    ({'damage': (1.0, 0.0)}, 'damage_probs must hold one probability per class'),
    ({'damage_set': ()}, 'damage_set must be non-empty'),
    ({'fatigue_set': (3,)}, 'fatigue_set must be non-empty indices'),
])
def test_unsound_predictions_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        decide(window(**bad), T, PolicyState())


def test_thresholds_validation_names_the_field_and_range():
    for spec in fields(Thresholds):
        low, high = spec.metadata['range']
        with pytest.raises(ThresholdError, match=rf'^{spec.name} must be in \[{low}, {high}\]'):
            Thresholds(**{spec.name: high + 1})
    with pytest.raises(ThresholdError, match=r'urgency_band must be in \[0.0, 5.0\], got nan'):
        Thresholds(urgency_band=math.nan)
    with pytest.raises(ThresholdError, match='escalate_windows must be int'):
        Thresholds(escalate_windows=2.5)
    with pytest.raises(ThresholdError, match='min_modalities must be int'):
        Thresholds(min_modalities=True)
    with pytest.raises(ThresholdError, match=r'reduce_urgency \(0.7\) must be <= '
                                             r'schedule_urgency \(0.6\)'):
        Thresholds(reduce_urgency=0.7)
    with pytest.raises(ThresholdError, match='escalate_windows .* deescalate_windows'):
        Thresholds(escalate_windows=20)
    with pytest.raises(ThresholdError, match='unknown thresholds'):
        Thresholds.from_mapping({'urgency': 0.5})
    assert Thresholds.from_mapping({'schedule_urgency': 0.7}) == replace(
        Thresholds(), schedule_urgency=0.7)
    assert Thresholds(critical_urgency=1).critical_urgency == 1   # ints are fine for floats


def test_agent_core_reports_the_open_request_with_its_context():
    from softmaint_core.agent import AgentCore, AgentSettings
    core = AgentCore(AgentSettings(thresholds=T), started=0.0, make_request_id=ids())
    assert core.open_request() is None
    for now in (1.0, 2.0, 3.0):
        core.predict(now, window(damage_set=(0, 2)))
    request = core.open_request()
    assert (request.request_id, request.opened, request.updated) == ('req-1', 3.0, 3.0)
    assert request.reasons == ('ambiguous_action',) and request.priority == 2
    assert request.candidates == ('continue_monitoring', 'schedule_maintenance')
    assert request.level == 'schedule_maintenance'
    assert request.evidence['damage_set'] == 'none,crack_tear'
    core.predict(4.0, window(damage_set=(0, 2)))
    assert (core.open_request().opened, core.open_request().updated) == (3.0, 4.0)
    core.acknowledge(Action.REDUCE_WORKLOAD, 'ada', 'req-1')
    assert core.open_request() is None


def test_agent_watchdog_follows_a_clock_that_went_back():
    """A restarted simulation: stale a timeout after the jump, not when the old stamps return."""
    from softmaint_core.agent import AgentCore, AgentSettings
    settings = AgentSettings(thresholds=T, stale_timeout=3.0, startup_grace=2.0)
    core = AgentCore(settings, started=0.0, make_request_id=ids())
    core.predict(3600.0, window())
    assert core.watch(3601.0) is None
    assert core.watch(2.0) is None                       # the clock went back to 0 at 1.0 s
    assert core.watch(6.9) is None                       # a new start-up grace from the jump
    step = core.watch(7.0)
    assert step is not None and step.decision.basis == 'stale'
    # the same for the ticks a replay runs: counted from when the jump is seen
    replay = AgentCore(settings, started=0.0, make_request_id=ids())
    replay.predict(3600.0, window())
    assert replay.watch_until(3601.0) == []
    assert replay.watch_until(10.0) == []
    ticks = replay.watch_until(20.0)
    assert ticks and ticks[0][0] == pytest.approx(15.0)


def test_a_latched_shutdown_is_the_open_request_an_operator_lists_and_answers():
    from softmaint_core.agent import AgentCore, AgentSettings
    core = AgentCore(AgentSettings(thresholds=T), started=0.0, make_request_id=ids())
    core.predict(1.0, window(urgency=0.9))
    request = core.open_request()
    assert request.request_id == 'req-1' and request.level == 'immediate_shutdown'
    assert request.reasons == ('shutdown_latched',) and request.priority == 3
    step = core.acknowledge(Action.SCHEDULE_MAINTENANCE, 'ada', 'req-1')
    assert step.decision.action == S and core.open_request() is None
