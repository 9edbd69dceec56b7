"""
Profile policies, from the shipped overlays: the same predictions, different decisions.

Thresholds and action settings are read from config/softmaint.yaml + config/profiles/NAME.yaml
exactly as the agent gets them (softmaint_core.profiles), then fed to the pure policy.
"""
from pathlib import Path

import pytest
from softmaint_core.decisions import decide, PolicyState, PredictionSummary, stale_decision
from softmaint_core.settings import Action, ActionSettings, ThresholdError
from softmaint_core.profiles import agent_actions, agent_thresholds, load_parameter_files

CONFIG = Path(__file__).resolve().parents[2] / 'config'
ALL = ('camera', 'tactile', 'proprio', 'environment')


def policy_of(profile):
    files = [CONFIG / 'softmaint.yaml']
    if profile != 'default':
        files.append(CONFIG / 'profiles' / f'{profile}.yaml')
    agent = load_parameter_files(files)['softmaint_agent']
    return agent_thresholds(agent), agent_actions(agent)


def window(urgency=0.1, urgency_std=0.0, damage_set=(0,), available=ALL):
    return PredictionSummary(urgency=urgency, uncertainty=0.1, urgency_std=urgency_std,
                             fatigue_probs=(0.9, 0.05, 0.05),
                             damage_probs=(0.9, 0.025, 0.025, 0.025, 0.025),
                             fatigue_set=(0,), damage_set=damage_set, available=available,
                             modalities=4)


def run(profile, windows):
    """Decisions over consecutive windows under a profile's policy."""
    thresholds, actions = policy_of(profile)
    state, decisions = PolicyState(), []
    for i, summary in enumerate(windows):
        decision, state = decide(summary, thresholds, state, lambda: f'req-{i}', actions)
        decisions.append(decision)
    return decisions


DEGRADED = window(available=('proprio',))
# A shutdown is possible (0.78 + 0.5 * 0.1 >= 0.8) but not certain under the default policy.
CRITICAL_UNCONFIRMED = window(urgency=0.78, urgency_std=0.1)


@pytest.mark.parametrize('summary, default_action, medical_action', [
    (window(urgency=0.3), Action.CONTINUE_MONITORING, Action.REDUCE_WORKLOAD),
    (window(urgency=0.45), Action.REDUCE_WORKLOAD, Action.SCHEDULE_MAINTENANCE),
    # medical holds a wider band possible (0.30-0.36 reaches schedule_urgency 0.35)
    (window(urgency=0.33, urgency_std=0.03), Action.CONTINUE_MONITORING,
     Action.SCHEDULE_MAINTENANCE),
    (window(urgency=0.6), Action.SCHEDULE_MAINTENANCE, Action.IMMEDIATE_SHUTDOWN),
])
def test_medical_is_more_conservative_than_default(summary, default_action, medical_action):
    # Three identical windows: the default needs them all to escalate, medical acts at once.
    assert run('default', [summary] * 3)[-1].action == default_action
    medical = run('medical', [summary])
    assert medical[0].action == medical_action
    assert medical[0].action > default_action


def test_medical_asks_where_default_takes_the_safest():
    ambiguous = [window(damage_set=(0, 2))] * 3      # continue or schedule
    default = run('default', ambiguous)[-1]
    assert default.action == Action.SCHEDULE_MAINTENANCE and not default.request_id
    assert 'taking the safest' in default.reason
    medical = run('medical', ambiguous)[0]
    assert medical.action == Action.REQUEST_ASSISTANCE and medical.request_id
    assert medical.evidence['assistance_reasons'] == 'ambiguous_action'


def test_medical_shutdown_retracts_from_the_patient_before_harm():
    # urgency 0.6 is far from failure (RUL ~8000 cycles)
    decision = run('medical', [window(urgency=0.6)])[0]
    assert decision.action == Action.IMMEDIATE_SHUTDOWN and decision.workload_limit == 0.0
    assert decision.reason.startswith('Immediate shutdown (retract from the patient')
    assert decision.evidence['shutdown_mode'] == 'retract'


def test_space_acts_on_its_own_where_default_asks():
    degraded = [DEGRADED] * 3
    default = run('default', degraded)[-1]
    assert default.action == Action.REQUEST_ASSISTANCE and default.request_id
    space = run('space', degraded)
    assert all(d.action != Action.REQUEST_ASSISTANCE and not d.request_id for d in space)
    assert space[-1].action == Action.REDUCE_WORKLOAD
    assert 'acting without assistance' in space[-1].reason
    assert '1800 s > 60 s' in space[-1].reason
    # fewer requests over a mixed run: degraded inputs, a possible shutdown, ambiguity, calm
    mixed = (degraded + [CRITICAL_UNCONFIRMED] + [window(damage_set=(0, 2))] * 3
             + [window()] * 4)
    requests = {name: len({d.request_id for d in run(name, mixed)
                           if d.action == Action.REQUEST_ASSISTANCE})
                for name in ('default', 'space')}
    assert requests['space'] == 0 < requests['default']


def test_space_critical_unconfirmed_stows_and_holds():
    assert run('default', [CRITICAL_UNCONFIRMED])[0].action == Action.REQUEST_ASSISTANCE
    decision = run('space', [CRITICAL_UNCONFIRMED])[0]
    assert decision.action == Action.IMMEDIATE_SHUTDOWN
    assert decision.reason.startswith('Immediate shutdown (stow and hold until the ground '
                                      'station answers): acting without assistance')
    assert decision.evidence['shutdown_mode'] == 'safe_hold'
    assert decision.request_id        # latched: the ground station's answer lifts it


def test_space_stale_predictions_reduce_workload_instead_of_asking():
    thresholds, actions = policy_of('space')
    decision, _ = stale_decision(PolicyState(), thresholds, 5.0, 3.0, Action.REQUEST_ASSISTANCE,
                                 actions=actions)
    assert decision.action == Action.REDUCE_WORKLOAD and not decision.request_id
    default_thresholds, _ = policy_of('default')
    decision, _ = stale_decision(PolicyState(), default_thresholds, 5.0, 3.0,
                                 Action.REQUEST_ASSISTANCE)
    assert decision.action == Action.REQUEST_ASSISTANCE


def test_deep_sea_shutdown_is_a_safe_surfacing_posture():
    critical = window(urgency=0.9)
    default = run('default', [critical])[0]
    assert default.reason.startswith('Immediate shutdown: fatigue {low}, damage {none}, urgency')
    assert 'shutdown_mode' not in run('default', [window()])[0].evidence
    decision = run('deep_sea', [critical])[0]
    assert decision.action == Action.IMMEDIATE_SHUTDOWN
    assert decision.reason.startswith('Immediate shutdown (safe surfacing posture')
    assert decision.evidence['shutdown_mode'] == 'surface'
    # urgency acts earlier than by default: sea water in a crack or leak
    wearing = [window(urgency=0.55)] * 3
    assert run('deep_sea', wearing)[-1].action == Action.SCHEDULE_MAINTENANCE
    assert run('default', wearing)[-1].action == Action.REDUCE_WORKLOAD


@pytest.mark.parametrize('values, message', [
    ({'shutdown_mode': 'explode'}, r"shutdown_mode must be one of \['stop', 'surface', "),
    ({'autonomous_action': 'request_assistance'}, 'autonomous_action must be one of'),
    ({'assistance_latency': -1.0}, r'assistance_latency must be a number in \[0.0, '),
    ({'max_assistance_latency': 'soon'}, 'max_assistance_latency must be a number'),
    ({'latency': 3.0}, 'unknown action settings'),
])
def test_action_settings_are_validated(values, message):
    with pytest.raises(ThresholdError, match=message):
        ActionSettings.from_mapping(values)


def test_inspection_decisions_follow_the_profile_too():
    from softmaint_core.inspection import considered_decision
    degraded = [DEGRADED] * 4
    thresholds, actions = policy_of('space')
    decision = considered_decision(degraded, thresholds, actions)
    assert decision.action == Action.REDUCE_WORKLOAD and 'acting without assistance' in \
        decision.reason and decision.basis == 'inspection'
    default_thresholds, _ = policy_of('default')
    assert considered_decision(degraded, default_thresholds).action == \
        Action.REQUEST_ASSISTANCE
    thresholds, actions = policy_of('deep_sea')
    decision = considered_decision([window(urgency=0.9)] * 2, thresholds, actions)
    assert decision.reason.startswith('Immediate shutdown (safe surfacing posture')
    assert decision.evidence['shutdown_mode'] == 'surface'
