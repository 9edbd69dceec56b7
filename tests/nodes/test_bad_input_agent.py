"""
Bad input to the maintenance agent (issue #17): 20 or more classes per topic, service and action.

All go through one agent process. Each bad prediction is alarming in every field but the one
that is wrong (urgency 0.9: a shutdown if it were taken), and a calm prediction follows it:
the agent must stay up, count the case under its reason in /diagnostics
(`rejected.<input>.<reason>`), still decide continue_monitoring on the calm one and never call
the emergency stop. Bad answers, history requests and inspect goals must be refused with the
reason and counted, the maintenance log must hold no answer, and a good request must still be
served. Goal floods and cancel storms must leave the action server serving; the cancels,
repeated goal ids, unknown goals and abandoned goals that rclpy's action server answers itself
are checked on the client side and counted by the node (AuditedActionServer).
"""
import math
from pathlib import Path

from agent_operator import CALM, CRITICAL, Operator, prediction
from bad_input import Case, params, Record
import pytest

REPO = Path(__file__).resolve().parents[2]
PREDICTION, ACKNOWLEDGE = 'softmaint/prediction', 'softmaint/acknowledge'
LIST_REQUESTS, INSPECT = 'softmaint/list_requests', 'softmaint/inspect'
LONGEST = 10.0          # max_inspection_duration of the node under test [s]
# a storm's count: DDS drops the requests beyond the action service's queues
AT_LEAST_ONE = -1


# ------------------------------------------------------------------ predictions

def _alarming(**fields):
    """Return make(rig, previous stamp): a critical prediction with `fields` spoiled."""
    def make(rig, previous):
        rig.op.stamp += 1
        msg = prediction(rig.op.stamp, **CRITICAL)
        for name, value in fields.items():
            setattr(msg, name, value(msg, previous) if callable(value) else value)
        return msg
    return make


def _reconstructed(*names):
    from softmaint_interfaces.msg import ReconstructedModality
    return [ReconstructedModality(name=n, embedding=[0.0] * 32, confidence=0.5) for n in names]


DAMAGE = ['none', 'puncture_leak', 'crack_tear', 'delamination_bulge', 'actuator_clog']
PREDICTION_CASES = [Case(PREDICTION, name, reason, _alarming(**fields))
                    for name, reason, fields in (
    ('urgency_nan', 'urgency', {'urgency': math.nan}),
    ('urgency_inf', 'urgency', {'urgency': math.inf}),
    ('urgency_above_1', 'urgency', {'urgency': 1.5}),
    ('urgency_negative', 'urgency', {'urgency': -0.2}),
    ('uncertainty_nan', 'uncertainty', {'uncertainty': math.nan}),
    ('uncertainty_above_1', 'uncertainty', {'uncertainty': 7.0}),
    ('urgency_std_nan', 'urgency_std', {'urgency_std': math.nan}),
    ('urgency_std_negative', 'urgency_std', {'urgency_std': -1.0}),
    ('fatigue_probs_short', 'fatigue_probs', {'fatigue_probs': [0.5, 0.5]}),
    ('fatigue_probs_sum_3', 'fatigue_probs', {'fatigue_probs': [1.0, 1.0, 1.0]}),
    ('fatigue_probs_huge', 'fatigue_probs', {'fatigue_probs': [0.0] * 100_000}),
    ('damage_probs_negative', 'damage_probs', {'damage_probs': [1.2, -0.2, 0.0, 0.0, 0.0]}),
    ('damage_classes_without_none', 'classes', {'damage_classes': ['intact'] + DAMAGE[1:]}),
    ('fatigue_level_unknown', 'classes', {'fatigue_classes': ['low', 'medium', 'severe']}),
    ('fatigue_set_empty', 'fatigue_set', {'fatigue_set': []}),
    ('damage_set_index_7', 'damage_set', {'damage_set': [7]}),
    ('damage_set_index_255', 'damage_set', {'damage_set': [0, 255]}),
    ('class_names_repeated', 'classes', {'fatigue_classes': ['low', 'medium', 'medium']}),
    ('class_name_oversize', 'classes', {'damage_classes': DAMAGE[:4] + ['x' * 100_000]}),
    ('unknown_modality', 'modalities', {'input_modalities': ['camera', 'sonar']}),
    ('modality_twice', 'modalities', {'input_modalities': ['tactile'] * 4,
                                      'reconstructed': []}),
    ('available_and_reconstructed', 'modalities',
     {'input_modalities': ['camera', 'tactile', 'proprio', 'environment'],
      'reconstructed': _reconstructed('camera')}),
    ('no_modalities', 'modalities', {'input_modalities': [], 'reconstructed': []}),
    ('model_sha256_not_hex', 'model', {'model_sha256': 'z' * 64}),
    ('model_id_oversize', 'model', {'model_id': 'm' * 100_000}),
    ('model_id_control_characters', 'model', {'model_id': 'student\n[INFO] forged'}),
    ('zero_stamp', 'bad_stamp', {'header': lambda msg, previous: _header(0, 0)}),
    ('nanosec_overflow', 'bad_stamp', {'header': lambda msg, previous: _header(
        previous + 1, 2**32 - 1)}),
    ('repeated_stamp', 'duplicate', {'header': lambda msg, previous: _header(previous, 0)}),
    ('stamp_going_back', 'out_of_order', {'header': lambda msg, previous: _header(
        previous - 1, 0)}),
    ('stamp_year_2038', 'future_stamp', {'header': lambda msg, previous: _header(
        2**31 - 1, 0)}),
)]


def _header(sec, nanosec):
    from std_msgs.msg import Header
    header = Header()
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


# ------------------------------------------------------------------ services

def _answer(**fields):
    """Return make(rig): an AcknowledgeAssistance request with `fields` spoiled."""
    def make(rig):
        from softmaint_interfaces.srv import AcknowledgeAssistance
        request = AcknowledgeAssistance.Request(
            request_id='req-0123abcd', operator_name='ada', action=2, note='looked at it',
            fatigue_label=-1, damage_label=-1, urgency_label=math.nan)
        for name, value in fields.items():
            setattr(request, name, value)
        return request
    return make


ACKNOWLEDGE_CASES = [Case(ACKNOWLEDGE, name, reason, _answer(**fields))
                     for name, reason, fields in (
    ('empty_request_id', 'request_id', {'request_id': ''}),
    ('oversize_request_id', 'request_id', {'request_id': 'r' * 100_000}),
    ('request_id_with_newline', 'request_id', {'request_id': 'req-1\nreq-2'}),
    ('unknown_request_id', 'request', {}),
    ('sql_in_request_id', 'request', {'request_id': "req-1' OR '1'='1"}),
    ('request_id_nul_byte', 'request', {'request_id': 'req-0123abcd\0x'}),   # ends at the NUL
    ('empty_operator', 'operator_name', {'operator_name': ''}),
    ('blank_operator', 'operator_name', {'operator_name': ' \t '}),
    ('oversize_operator', 'operator_name', {'operator_name': 'o' * 100_000}),
    ('operator_forging_a_log_line', 'operator_name',
     {'operator_name': 'ada\n[ERROR] [softmaint_agent]: forged'}),
    ('operator_terminal_escape', 'operator_name', {'operator_name': 'ada\x1b[2J'}),
    ('oversize_note', 'note', {'note': 'n' * 1_000_000}),
    ('note_terminal_escape', 'note', {'note': 'fine\x1b]0;owned\x07'}),
    ('action_request_assistance', 'action', {'action': 4}),
    ('action_unknown_5', 'action', {'action': 5}),
    ('action_255', 'action', {'action': 255}),
    ('fatigue_label_7', 'fatigue_label', {'fatigue_label': 7}),
    ('fatigue_label_minus_128', 'fatigue_label', {'fatigue_label': -128}),
    ('damage_label_127', 'damage_label', {'damage_label': 127}),
    ('urgency_label_1_5', 'urgency_label', {'urgency_label': 1.5}),
    ('urgency_label_inf', 'urgency_label', {'urgency_label': math.inf}),
    ('urgency_label_minus_inf', 'urgency_label', {'urgency_label': -math.inf}),
)]


def _history(limit=10, kinds=()):
    def make(rig):
        from softmaint_interfaces.srv import ListAssistanceRequests
        return ListAssistanceRequests.Request(history_limit=limit, history_kinds=list(kinds))
    return make


LIST_CASES = [Case(LIST_REQUESTS, name, reason, _history(**fields))
              for name, reason, fields in (
    ('limit_1001', 'history_limit', {'limit': 1001}),
    ('limit_2_31', 'history_limit', {'limit': 2**31}),
    ('limit_uint32_max', 'history_limit', {'limit': 2**32 - 1}),
    ('limit_and_kind_bad', 'history_limit', {'limit': 5000, 'kinds': ['nonsense']}),
    ('unknown_kind', 'history_kinds', {'kinds': ['repairs']}),
    ('empty_kind', 'history_kinds', {'kinds': ['']}),
    ('kind_in_capitals', 'history_kinds', {'kinds': ['DECISION']}),
    ('kind_with_spaces', 'history_kinds', {'kinds': [' decision ']}),
    ('kind_with_newline', 'history_kinds', {'kinds': ['decision\n']}),
    ('sql_or_true', 'history_kinds', {'kinds': ["decision' OR 1=1 --"]}),
    ('sql_drop_table', 'history_kinds', {'kinds': ["'; DROP TABLE events; --"]}),
    ('sql_like_wildcard', 'history_kinds', {'kinds': ['%']}),
    ('glob', 'history_kinds', {'kinds': ['*']}),
    ('two_kinds_in_one', 'history_kinds', {'kinds': ['decision,acknowledgement']}),
    ('json_in_kind', 'history_kinds', {'kinds': ['["decision"]']}),
    ('homoglyph', 'history_kinds', {'kinds': ['decisi\u043en']}),       # Cyrillic o
    ('right_to_left_override', 'history_kinds', {'kinds': ['\u202enoisiced']}),
    ('emoji', 'history_kinds', {'kinds': ['\U0001f527']}),
    ('oversize_kind', 'history_kinds', {'kinds': ['k' * 100_000]}),
    ('more_kinds_than_exist', 'history_kinds', {'kinds': ['decision'] * 5}),
    ('huge_kinds_list', 'history_kinds', {'kinds': ['decision'] * 10_000}),
)]


# ------------------------------------------------------------------ inspect goals

def _goal(duration=1.0, min_windows=1):
    def run(rig):
        handle = rig.send_goal(duration, min_windows)
        assert not handle.accepted
        return 1
    return run


def _bursts(rig, duration):
    """
    Send 4 bursts of 8 goals at once; assert every one is refused; return 32.

    Bursts, not 32 at once: the goal service's queue holds 10 requests (rcl_action's default
    QoS), and DDS drops what does not fit before the node sees it; the client waits forever.
    """
    for _ in range(4):
        futures = [rig.op.inspect.send_goal_async(_goal_msg(duration, 1)) for _ in range(8)]
        assert rig.op.spin_until(lambda: all(f.done() for f in futures))
        assert not any(f.result().accepted for f in futures)
    return 32


def _flood(rig):
    """Run two long inspections; a flood of good goals is refused as busy."""
    running = [rig.send_goal(LONGEST, 1) for _ in range(2)]
    assert all(h.accepted for h in running)
    refused = _bursts(rig, 1.0)
    rig.cancel_all(running)
    return refused


def _cancel_storm(rig):
    """
    Cancel one running goal fifty times at once: it ends canceled, the server goes on.

    Beyond the queues of the service (10 requests, 10 replies) DDS drops cancels and their
    answers, as in a goal flood: only the goal's end tells.
    """
    from action_msgs.msg import GoalStatus
    handle = rig.send_goal(LONGEST, 1)
    for _ in range(50):
        handle.cancel_goal_async()
    assert rig.result(handle).status == GoalStatus.STATUS_CANCELED
    return AT_LEAST_ONE


def _cancel_all_storm(rig):
    """Send twenty 'cancel every goal' requests (zero id and stamp) while two goals run."""
    from action_msgs.msg import GoalStatus
    from action_msgs.srv import CancelGoal
    running = [rig.send_goal(LONGEST, 1) for _ in range(2)]
    for _ in range(20):
        rig.cancel_client.call_async(CancelGoal.Request())
    assert [rig.result(h).status for h in running] == [GoalStatus.STATUS_CANCELED] * 2
    return AT_LEAST_ONE


def _cancel_unknown(rig):
    """Cancel a goal id the server never saw."""
    from action_msgs.srv import CancelGoal
    request = CancelGoal.Request()
    request.goal_info.goal_id.uuid = list(range(16))
    reply = rig.call(rig.cancel_client, request)
    assert reply.return_code == CancelGoal.Response.ERROR_UNKNOWN_GOAL_ID
    return 1


def _cancel_finished(rig):
    """Cancel a goal that already ended."""
    from action_msgs.srv import CancelGoal
    handle = rig.send_goal(0.2, 2**32 - 1)
    rig.result(handle)
    future = handle.cancel_goal_async()
    assert rig.op.spin_until(future.done)
    assert future.result().return_code == CancelGoal.Response.ERROR_GOAL_TERMINATED
    return 1


def _repeated_goal_id(rig):
    """Send a second goal with a running one's id: refused, the first runs on."""
    from unique_identifier_msgs.msg import UUID
    uuid = UUID(uuid=list(range(100, 116)))
    first = rig.send_goal(LONGEST, 1, uuid)
    assert first.accepted and not rig.send_goal(1.0, 1, uuid).accepted
    rig.cancel_all([first])
    return 1


def _unknown_result(rig):
    """Ask for the result of a goal id the server never saw."""
    from action_msgs.msg import GoalStatus
    from softmaint_interfaces.action import Inspect
    request = Inspect.Impl.GetResultService.Request()
    request.goal_id.uuid = list(range(200, 216))
    assert rig.call(rig.result_client, request).status == GoalStatus.STATUS_UNKNOWN
    return 1


def _impossible_min_windows(rig):
    """Ask for four billion windows in 0.2 s: accepted, then aborted saying why."""
    from action_msgs.msg import GoalStatus
    response = rig.result(rig.send_goal(0.2, 2**32 - 1))
    assert response.status == GoalStatus.STATUS_ABORTED
    assert 'windows arrived' in response.result.summary
    return 1


def _abandoned(rig):
    """Send a goal and go away: the goal ends and frees its slot, its result expires unread."""
    from rclpy.action import ActionClient
    from softmaint_interfaces.action import Inspect
    client = ActionClient(rig.op.node, Inspect, INSPECT)
    future = client.send_goal_async(_goal_msg(0.3, 1))
    assert rig.op.spin_until(future.done) and future.result().accepted
    client.destroy()
    running = []          # both slots free again once the abandoned goal ended

    def both_slots():
        handle = rig.send_goal(LONGEST, 1)
        running.extend([handle] if handle.accepted else [])
        return len(running) == 2
    assert rig.op.spin_until(both_slots, 10.0)
    rig.cancel_all(running)
    return 1


INSPECT_CASES = [Case(INSPECT, name, reason, _goal(*goal)) for name, reason, goal in (
    ('duration_zero', 'duration', (0.0,)),
    ('duration_minus_zero', 'duration', (-0.0,)),
    ('duration_negative', 'duration', (-5.0,)),
    ('duration_nan', 'duration', (math.nan,)),
    ('duration_inf', 'duration', (math.inf,)),
    ('duration_minus_inf', 'duration', (-math.inf,)),
    ('duration_above_max', 'duration', (LONGEST + 0.01,)),
    ('duration_float32_max', 'duration', (3.4e38,)),
    ('duration_negative_denormal', 'duration', (-1e-45,)),
    ('min_windows_zero', 'min_windows', (1.0, 0)),
    ('both_invalid', 'duration', (math.nan, 0)),
)] + [Case(INSPECT, 'goal_flood', 'busy', _flood),
      Case(INSPECT, 'invalid_goal_flood', 'duration', lambda rig: _bursts(rig, math.nan))] + [
    Case(INSPECT, run.__name__.strip('_'), reason, run) for run, reason in (
        (_cancel_storm, 'cancel_repeated'), (_cancel_all_storm, 'cancel_nothing'),
        (_cancel_unknown, 'cancel_unknown_goal'), (_cancel_finished, 'cancel_finished_goal'),
        (_repeated_goal_id, 'duplicate_goal_id'), (_unknown_result, 'result_unknown_goal'),
        (_impossible_min_windows, 'too_few_windows'), (_abandoned, 'abandoned_goal'))]


def _goal_msg(duration, min_windows):
    from softmaint_interfaces.action import Inspect
    return Inspect.Goal(duration=duration, min_windows=min_windows)


# ------------------------------------------------------------------ the node and the rig

class Rig:
    """The operator of tests/agent_operator.py, with the clients the cases need."""

    def __init__(self, context, proc):
        from action_msgs.srv import CancelGoal
        from softmaint_interfaces.action import Inspect
        from softmaint_interfaces.srv import ListAssistanceRequests
        self.proc = proc
        self.op = Operator(context)
        self.list_client = self.op.node.create_client(ListAssistanceRequests, LIST_REQUESTS)
        self.cancel_client = self.op.node.create_client(
            CancelGoal, f'{INSPECT}/_action/cancel_goal')
        self.result_client = self.op.node.create_client(
            Inspect.Impl.GetResultService, f'{INSPECT}/_action/get_result')

    def count(self, case):
        """Return the node's count of `case`'s reason in its newest diagnostics."""
        name = case.input_name.split('/')[-1]
        return int(self.op.diagnostics[-1][f'rejected.{name}.{case.reason}'])

    def counted(self, case, expected, timeout=10.0):
        return self.op.spin_until(lambda: self.count(case) == expected or
                                  self.proc.poll() is not None,
                                  timeout) and self.proc.poll() is None

    def call(self, client, request):
        assert client.wait_for_service(timeout_sec=10.0)
        return self.op.call(client, request)

    def send_goal(self, duration, min_windows, uuid=None):
        future = self.op.inspect.send_goal_async(_goal_msg(duration, min_windows),
                                                 goal_uuid=uuid)
        assert self.op.spin_until(future.done), 'no answer to the goal'
        return future.result()

    def result(self, handle):
        future = handle.get_result_async()
        assert self.op.spin_until(future.done, 20.0), 'no result'
        return future.result()

    def cancel_all(self, handles):
        for handle in handles:
            cancel = handle.cancel_goal_async()
            assert self.op.spin_until(cancel.done)
            self.result(handle)

    def unharmed(self):
        """Assert the agent is up, decides as before on a calm window, never stopped the arm."""
        assert self.proc.poll() is None, 'the agent died'
        decision = self.op.send(**CALM)
        assert (decision.action_name, decision.workload_limit) == ('continue_monitoring', 1.0)
        assert {d.action_name for d in self.op.decisions} == {'continue_monitoring'}
        assert self.op.estop_calls == []


@pytest.fixture(scope='module')
def rig(module_spawn, module_ros_context, tmp_path_factory):
    """One agent for every case, and the record written when the module ends."""
    log_path = tmp_path_factory.mktemp('bad_input_agent') / 'maintenance.db'
    args = ['-m', 'softmaint.agent_node', '--ros-args', '--params-file',
            str(REPO / 'config' / 'softmaint.yaml')]
    for param in (f'log_path:={log_path}', 'decision_period:=0.1', 'diagnostics_period:=0.1',
                  'stale_timeout:=3600.0', 'emergency_stop_service:=test_estop',
                  f'max_inspection_duration:={LONGEST}'):
        args += ['-p', param]
    proc = module_spawn(args, wait_for_line='ready')
    rig = Rig(module_ros_context, proc)
    rig.record = Record('agent')
    try:
        rig.op.wait_for_agent()
        assert rig.op.inspect.wait_for_server(timeout_sec=20.0)
        assert rig.op.spin_until(lambda: rig.op.diagnostics)
        rig.unharmed()
        yield rig
    finally:
        rig.op.close()
        rig.record.write(crashed=proc.poll() not in (None, 0))


@pytest.mark.parametrize('case', params(PREDICTION_CASES))
def test_bad_prediction_is_counted_and_decides_nothing(rig, case):
    before = rig.count(case)
    rig.op.send(**CALM)
    rig.op.publisher.publish(case.make(rig, rig.op.stamp))
    assert rig.counted(case, before + 1), (case.name, rig.op.diagnostics[-1])
    rig.unharmed()
    rig.record.handled_case(case)


@pytest.mark.parametrize('case', params(ACKNOWLEDGE_CASES))
def test_bad_answer_is_refused_and_counted(rig, case):
    before = rig.count(case)
    reply = rig.call(rig.op.acknowledge, case.make(rig))
    assert not reply.accepted and reply.message.startswith('refused: '), reply.message
    assert len(reply.message) < 1000                       # cut short
    assert rig.counted(case, before + 1), reply.message
    rig.unharmed()
    rig.record.handled_case(case)


@pytest.mark.parametrize('case', params(LIST_CASES))
def test_bad_history_request_is_refused_and_counted(rig, case):
    from softmaint_interfaces.srv import ListAssistanceRequests
    before = rig.count(case)
    reply = rig.call(rig.list_client, case.make(rig))
    assert not reply.success and not reply.history and len(reply.message) < 1000
    assert rig.counted(case, before + 1), reply.message
    good = rig.call(rig.list_client, ListAssistanceRequests.Request(history_limit=5))
    assert good.success and {e.kind for e in good.history} == {'decision', 'model_change'}
    rig.unharmed()
    rig.record.handled_case(case)


@pytest.mark.parametrize('case', params(INSPECT_CASES))
def test_bad_goal_flood_or_cancel_storm_leaves_the_action_serving(rig, case):
    before = rig.count(case)
    added = case.make(rig)
    if added == AT_LEAST_ONE:
        assert rig.op.spin_until(lambda: rig.count(case) > before)
    else:
        # an abandoned goal is counted when its result expires (rclpy's result_timeout, 10 s)
        assert rig.counted(case, before + added, timeout=20.0), (case.name, rig.count(case))
    rig.unharmed()
    rig.record.handled_case(case)


def test_every_input_gets_20_classes_or_more():
    for cases in (PREDICTION_CASES, ACKNOWLEDGE_CASES, LIST_CASES, INSPECT_CASES):
        assert len(cases) >= 20, cases[0].input_name


def test_inspection_still_works_nothing_was_logged_and_the_node_stops_cleanly(rig):
    from action_msgs.msg import GoalStatus
    from softmaint_interfaces.srv import ListAssistanceRequests

    def feed():
        rig.op.stamp += 1
        rig.op.publisher.publish(prediction(rig.op.stamp, **CALM))
    timer = rig.op.node.create_timer(0.1, feed)
    try:
        response = rig.result(rig.send_goal(0.5, 1))
    finally:
        timer.destroy()
    assert response.status == GoalStatus.STATUS_SUCCEEDED, response.result.summary
    assert response.result.decision.action_name == 'continue_monitoring'
    answers = rig.call(rig.list_client, ListAssistanceRequests.Request(
        history_limit=100, history_kinds=['acknowledgement', 'emergency_stop']))
    assert answers.success and not answers.history
    rig.proc.terminate()
    output = rig.proc.communicate(timeout=10)[0]
    assert rig.proc.returncode == 0 and 'Traceback' not in output, output[-3000:]
