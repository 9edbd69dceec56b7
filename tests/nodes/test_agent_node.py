"""
Maintenance agent as a real process fed MaintenancePrediction messages by the test.

Each prediction carries a distinct header stamp; the agent republishes its current decision
every 0.1 s with the stamp of the newest prediction it used, so the test knows which window a
decision answers without sleeping.
"""
from pathlib import Path

from agent_operator import AMBIGUOUS, CALM, CRITICAL, evidence_of, HIGH, Operator, prediction
import pytest
from ros_helpers import request_until_answered

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'softmaint.yaml'
NODE = ['-m', 'softmaint.agent_node', '--ros-args', '--params-file', str(CONFIG),
        '-p', 'decision_period:=0.1',
        '-p', 'diagnostics_period:=0.2', '-p', 'thresholds.escalate_windows:=3',
        '-p', 'thresholds.deescalate_windows:=4']


@pytest.fixture
def operator(ros_context):
    operator = Operator(ros_context)
    yield operator
    operator.close()


@pytest.fixture
def start_agent(spawn, operator, tmp_path):
    """Start the agent with extra parameters; return its process and log path."""
    def start(*parameters):
        log_path = tmp_path / 'maintenance.db'
        extra = [item for p in parameters for item in ('-p', p)]
        proc = spawn([*NODE, '-p', f'log_path:={log_path}', *extra], wait_for_line='ready')
        operator.wait_for_agent()
        return proc, log_path
    return start


def _log(path, **query):
    from softmaint_core.maintenance_log import MaintenanceLog
    with MaintenanceLog(path, create=False) as log:
        return log.query(**query)


@pytest.mark.slow
def test_hysteresis_escalation_and_immediate_shutdown(operator, start_agent):
    proc, log_path = start_agent('emergency_stop_service:=test_estop', 'stale_timeout:=30.0')
    assert operator.actions([CALM, HIGH, HIGH]) == ['continue_monitoring'] * 3
    assert ('schedule_maintenance called for (fatigue {low}, damage {none}, urgency 0.70-0.70 '
            'call for schedule_maintenance) in 2 of 3 windows') in operator.decisions[-1].reason
    decision = operator.send(**HIGH)
    assert (decision.action_name, decision.priority) == ('schedule_maintenance', 2)
    assert decision.workload_limit == pytest.approx(0.25)
    assert operator.spin_until(lambda: operator.workloads[-1] == pytest.approx(0.25))
    evidence = evidence_of(decision)
    assert evidence['urgency'] == '0.700' and evidence['basis'] == 'prediction'
    assert decision.model_id == 'student-test'
    assert operator.actions([CALM] * 4) == ['schedule_maintenance'] * 3 + ['continue_monitoring']
    assert operator.estop_calls == []

    decision = operator.send(**CRITICAL)               # no confirmation windows needed
    assert (decision.action_name, decision.priority) == ('immediate_shutdown', 3)
    assert operator.spin_until(lambda: len(operator.estop_calls) == 1)
    assert operator.spin_until(lambda: operator.workloads[-1] == 0.0)
    status = operator.diagnostic(lambda d: d['emergency_stop'] == 'confirmed')
    assert (status['hardware_id'], status['model_id']) == ('/', 'student-test')
    assert operator.actions([CRITICAL]) == ['immediate_shutdown']
    assert len(operator.estop_calls) == 1             # called once per shutdown

    decisions = _log(log_path, kinds=['decision'])
    assert [e.action for e in decisions] == ['continue_monitoring', 'schedule_maintenance',
                                             'continue_monitoring', 'immediate_shutdown']
    assert decisions[1].evidence['urgency'] == '0.700'
    assert decisions[1].model_id == 'student-test'
    stops = _log(log_path, kinds=['emergency_stop'])
    assert [e.evidence['outcome'] for e in stops] == ['confirmed']
    assert 'arm stopped' in stops[0].summary
    assert len(_log(log_path, kinds=['model_change'])) == 1
    proc.terminate()                                    # SIGTERM: a clean stop
    output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and 'Traceback' not in output, output


@pytest.mark.slow
def test_ambiguous_set_requests_assistance_until_acknowledged(operator, start_agent):
    from softmaint_interfaces.msg import MaintenanceDecision
    # ask when the possible actions span two levels (continue or schedule here)
    _, log_path = start_agent('stale_timeout:=30.0', 'thresholds.ambiguity_spread:=2')
    actions = operator.actions([AMBIGUOUS] * 3)
    assert actions == ['continue_monitoring'] * 2 + ['request_assistance']
    decision = operator.decisions[-1]
    assert decision.request_id.startswith('req-') and decision.priority == 2
    assert ('the possible actions differ (fatigue {low}, damage {none,crack_tear}'
            in decision.reason)
    assert decision.workload_limit == pytest.approx(0.25)     # holding the safest: schedule
    request_id = decision.request_id

    for args, error in (((request_id, 3), 'operator_name is empty'),
                        (('req-nonexistent', 2), "'req-nonexistent' is unknown"),
                        ((request_id, MaintenanceDecision.REQUEST_ASSISTANCE), 'must be one of'),
                        ((request_id, 2), 'fatigue_label 7')):
        operator_name = '' if error.startswith('operator') else 'ada'
        labels = {'fatigue_label': 7} if 'fatigue' in error else {}
        answer = operator.answer(*args, operator=operator_name, **labels)
        assert not answer.accepted and error in answer.message, answer.message

    answer = operator.answer(request_id, MaintenanceDecision.SCHEDULE_MAINTENANCE,
                             damage_label=2, urgency_label=0.6)
    assert answer.accepted and 'now schedule_maintenance' in answer.message
    assert operator.spin_until(lambda: operator.decisions[-1].action_name ==
                               'schedule_maintenance')
    assert 'operator ada chose it answering ' + request_id in operator.decisions[-1].reason
    again = operator.answer(request_id, MaintenanceDecision.CONTINUE_MONITORING)
    assert not again.accepted and 'is answered' in again.message
    # the answered ambiguity stays muted while it lasts
    assert operator.actions([AMBIGUOUS] * 3) == ['schedule_maintenance'] * 3

    acks = _log(log_path, kinds=['acknowledgement'])
    assert [(e.request_id, e.action) for e in acks] == [(request_id, 'schedule_maintenance')]
    assert acks[0].evidence == {'operator': 'ada', 'note': 'looked at it', 'fatigue_label': -1,
                                'damage_label': 2, 'urgency_label': pytest.approx(0.6)}
    requests = _log(log_path, kinds=['decision'], request_id=request_id)
    assert [e.action for e in requests] == ['request_assistance']


def _operator_command(*args):
    """Run softmaint-operator as its own process; return (exit code, stdout, stderr)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, '-m', 'softmaint.operator_cli', *args],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
def test_operator_command_lists_and_answers_a_real_request(operator, start_agent):
    import json
    _, log_path = start_agent('stale_timeout:=30.0', 'thresholds.ambiguity_spread:=2')
    code, out, err = _operator_command('list')
    assert (code, out) == (0, 'no open assistance requests\n'), err
    operator.actions([AMBIGUOUS] * 3)
    request_id = operator.decisions[-1].request_id
    assert request_id

    code, out, err = _operator_command('list', '--json')
    assert code == 0, err
    [request] = json.loads(out)
    assert request['request_id'] == request_id and request['reasons'] == ['ambiguous_action']
    assert request['candidate_actions'] == ['continue_monitoring', 'schedule_maintenance']
    assert request['level'] == 'schedule_maintenance' and request['model_id'] == 'student-test'
    assert request['evidence']['damage_set'] == 'none,crack_tear'
    assert request['opened'] <= request['updated']
    code, out, _ = _operator_command('list')
    assert f'{request_id}  priority 2' in out and 'holding schedule_maintenance' in out

    code, out, err = _operator_command('answer', request_id, '--action', 'reduce_workload',
                                       '--operator', 'ada', '--damage', 'crack_tear')
    assert code == 0 and 'the decision is now reduce_workload' in out, err
    assert operator.spin_until(lambda: operator.decisions[-1].action_name == 'reduce_workload')
    assert f'operator ada chose it answering {request_id}' in operator.decisions[-1].reason
    code, _, err = _operator_command('answer', request_id, '--action', 'reduce_workload',
                                     '--operator', 'ada')
    assert code == 1 and 'is answered' in err

    # a new reason opens a new request; a false alarm keeps the level the agent holds
    operator.actions([{'available': ['proprio']}] * 3)
    second = operator.decisions[-1].request_id
    assert second and second != request_id
    code, out, err = _operator_command('answer', second, '--false-alarm', '--operator', 'bo')
    assert code == 0, err
    assert operator.spin_until(lambda: operator.decisions[-1].action_name == 'reduce_workload')

    code, out, err = _operator_command('history', '--kind', 'acknowledgement', '--json')
    assert code == 0, err
    answers = json.loads(out)
    assert [(a['request_id'], a['action']) for a in answers] == [
        (second, 'reduce_workload'), (request_id, 'reduce_workload')]       # newest first
    assert answers[0]['evidence']['note'] == 'false alarm.'
    assert answers[1]['evidence']['damage_label'] == '2'
    code, _, err = _operator_command('history', '--limit', '5000')
    assert code == 1 and 'history_limit must be at most 1000' in err
    code, _, err = _operator_command('--namespace', '/nobody', '--timeout', '1', 'list')
    assert code == 3 and 'no agent serves /nobody/softmaint/list_requests' in err


@pytest.mark.slow
def test_watchdog_parameters_and_shutdown_without_stop_server(operator, start_agent):
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    _, log_path = start_agent('stale_timeout:=0.5', 'stale_action:=reduce_workload',
                              'emergency_stop_service:=nobody_serves_this')
    assert operator.send(**CALM).action_name == 'continue_monitoring'
    assert operator.spin_until(lambda: operator.decisions[-1].action_name == 'reduce_workload')
    stale = operator.decisions[-1]
    assert 'no prediction for' in stale.reason and '(timeout 0.5 s)' in stale.reason
    assert evidence_of(stale)['basis'] == 'stale'
    assert stale.prediction_stamp.sec == operator.stamp
    operator.diagnostic(lambda d: d['stale'] == 'True')

    client = AsyncParameterClient(operator.node, 'softmaint_agent')
    assert client.wait_for_services(timeout_sec=10.0)

    def set_parameters(**values):
        future = client.set_parameters([Parameter(k.replace('__', '.'), value=v)
                                        for k, v in values.items()])
        assert operator.spin_until(future.done)
        return future.result().results[0]

    result = set_parameters(thresholds__reduce_urgency=0.9)
    assert not result.successful
    assert 'reduce_urgency (0.9) must be <= schedule_urgency (0.6)' in result.reason
    result = set_parameters(thresholds__urgency_band=9.0)
    assert not result.successful and 'out of range' in result.reason
    result = set_parameters(stale_action='continue_monitoring')
    assert not result.successful and 'stale_action must be one of' in result.reason
    assert set_parameters(stale_action='request_assistance').successful
    assert operator.spin_until(lambda: operator.decisions[-1].action_name ==
                               'request_assistance')
    assert operator.decisions[-1].request_id

    assert set_parameters(stale_timeout=30.0).successful
    assert operator.send(**CRITICAL).action_name == 'immediate_shutdown'
    operator.diagnostic(lambda d: d['emergency_stop'] == 'no server')
    stops = _log(log_path, kinds=['emergency_stop'])
    assert [e.evidence['outcome'] for e in stops] == ['no server']
    assert 'the robot was NOT stopped' in stops[0].summary
    kinds = {e.evidence.get('basis') for e in _log(log_path, kinds=['decision'])}
    assert kinds == {'prediction', 'stale'}


@pytest.mark.slow
def test_watchdog_under_sim_time_counts_from_the_first_clock(operator, start_agent):
    """A bag replayed with --clock starts at its recording time, not at 0: the agent must not
    call its predictions stale the moment the clock arrives, only stale_timeout after it."""
    from rosgraph_msgs.msg import Clock
    clock = operator.node.create_publisher(Clock, '/clock', 10)
    now = [1.7e9]                                      # a bag recorded in 2023

    def advance(seconds, condition=lambda: False):
        end = now[0] + seconds
        while now[0] < end and not condition():
            now[0] += 0.02
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(now[0]), int(now[0] % 1 * 1e9)
            clock.publish(msg)
            operator.executor.spin_once(timeout_sec=0.01)
        return condition()

    start_agent('use_sim_time:=true', 'stale_timeout:=2.0', 'startup_grace:=3.0',
                'stale_action:=reduce_workload')
    assert advance(30.0, lambda: operator.diagnostics), 'the agent did not follow /clock'
    stale = [d for d in operator.decisions if 'no prediction for' in d.reason]
    assert not stale, f'stale at start-up: {stale[0].reason}'
    assert advance(30.0, lambda: any('no prediction for' in d.reason
                                     for d in operator.decisions))
    reason = next(d.reason for d in operator.decisions if 'no prediction for' in d.reason)
    age = float(reason.split('no prediction for ')[1].split(' s')[0])
    assert 5.0 <= age < 10.0, reason            # stale_timeout + startup_grace


@pytest.mark.slow
def test_inspect_round_trip_cancel_abort_and_rejected_goals(operator, start_agent):
    from action_msgs.msg import GoalStatus
    from softmaint_interfaces.action import Inspect
    _, log_path = start_agent('stale_timeout:=30.0', 'max_inspection_duration:=10.0')
    assert operator.inspect.wait_for_server(timeout_sec=20.0)
    published = []

    def feed():
        operator.stamp += 1
        published.append(operator.stamp)
        operator.publisher.publish(prediction(operator.stamp, **HIGH))

    def send_goal(duration, min_windows, feedback=None):
        future = operator.inspect.send_goal_async(
            Inspect.Goal(duration=duration, min_windows=min_windows),
            feedback_callback=feedback)
        assert operator.spin_until(future.done), 'goal response timed out'
        return future.result()

    def result_of(handle):
        future = handle.get_result_async()
        assert operator.spin_until(future.done, 20.0), 'result timed out'
        return future.result()

    for duration, min_windows in ((0.0, 3), (-1.0, 3), (20.0, 3), (1.0, 0),
                                  (float('nan'), 3)):
        rejected = request_until_answered(   # a refused goal may be sent again
            operator.executor, lambda d=duration, m=min_windows: operator.inspect.send_goal_async(
                Inspect.Goal(duration=d, min_windows=m)), 20.0)
        assert not rejected.accepted, (duration, min_windows)

    timer = operator.node.create_timer(0.1, feed)
    try:
        feedback = []
        handle = send_goal(1.0, 3, lambda msg: feedback.append(msg.feedback))
        assert handle.accepted
        response = result_of(handle)
        assert response.status == GoalStatus.STATUS_SUCCEEDED
        result = response.result
        assert result.windows_seen >= max(3, feedback[-1].windows_seen)
        assert [f.windows_seen for f in feedback] == sorted({f.windows_seen for f in feedback})
        assert result.mean_urgency == pytest.approx(0.7, abs=1e-6)
        assert result.max_urgency == pytest.approx(0.7, abs=1e-6)
        assert feedback[-1].running_urgency == pytest.approx(0.7, abs=1e-6)
        assert list(result.fatigue_probs) == pytest.approx([0.9, 0.05, 0.05], abs=1e-6)
        assert len(result.damage_probs) == 5
        assert result.decision.action_name == 'schedule_maintenance'
        assert result.summary.startswith(f'Inspected {result.windows_seen} windows over')
        assert 'Decision: schedule_maintenance' in result.summary

        feedback.clear()
        handle = send_goal(8.0, 5, lambda msg: feedback.append(msg.feedback))
        assert handle.accepted
        assert operator.spin_until(lambda: len(feedback) >= 2)
        short = send_goal(0.3, 1000)                    # a second one runs alongside
        assert short.accepted
        assert not send_goal(1.0, 1).accepted           # a third is one too many
        assert result_of(short).status == GoalStatus.STATUS_ABORTED
        cancel = handle.cancel_goal_async()
        assert operator.spin_until(cancel.done)
        assert len(cancel.result().goals_canceling) == 1
        response = result_of(handle)
        assert response.status == GoalStatus.STATUS_CANCELED
        assert response.result.windows_seen >= 2
        assert response.result.summary.startswith('No decision: canceled.')

        handle = send_goal(0.5, 1000)
        response = result_of(handle)
        assert response.status == GoalStatus.STATUS_ABORTED
        assert 'only ' in response.result.summary and ' of 1000 windows arrived' in \
            response.result.summary
    finally:
        timer.destroy()
    inspections = [e for e in _log(log_path, kinds=['decision'])
                   if e.evidence['basis'] == 'inspection']
    assert [e.action for e in inspections] == ['schedule_maintenance']
    assert inspections[0].summary.startswith('Inspected')


@pytest.mark.parametrize('parameter, message', [
    ('thresholds.reduce_urgency:=0.9', 'reduce_urgency (0.9) must be <= schedule_urgency (0.6)'),
    ('stale_action:=shrug', "stale_action must be one of ('request_assistance', "
                            "'reduce_workload'), got 'shrug'"),
])
def test_agent_refuses_invalid_parameters_at_start(spawn, tmp_path, parameter, message):
    proc = spawn([*NODE, '-p', f'log_path:={tmp_path / "log.db"}', '-p', parameter])
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert 'cannot start: ' + message in output


def test_params_file_spells_out_the_defaults():
    from dataclasses import asdict
    from softmaint_core.settings import Thresholds
    import yaml
    agent = yaml.safe_load(CONFIG.read_text())['softmaint_agent']['ros__parameters']
    assert agent['thresholds'] == asdict(Thresholds())
