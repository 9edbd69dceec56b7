"""
The whole suite across processes: softmaint-bringup runs the sim robot, ingestion, the student
and the agent; a separate rclpy client watches decisions, inspects, and reloads models.
"""
import json
import os
from pathlib import Path
import shutil
import signal

from action_msgs.msg import GoalStatus
import pytest
from ros_helpers import spin_until
from softmaint_core.maintenance_log import MaintenanceLog
import yaml

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / 'models' / 'student.onnx'
# the committed default student's id, from its metadata
MODEL_ID = json.loads(MODEL.with_suffix('.json').read_text())['model_id']


class Operator:
    """A person's rclpy client: latched decisions, the inspect action, the reload service."""

    def __init__(self, context):
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from softmaint_core import topics
        from softmaint_interfaces.action import Inspect
        from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction
        from softmaint_interfaces.srv import ReloadModel
        self.node = Node('operator', context=context)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.decisions, self.predictions = [], []
        self.node.create_subscription(MaintenanceDecision, topics.DECISION,
                                      self.decisions.append, latched)
        self.node.create_subscription(MaintenancePrediction, topics.PREDICTION,
                                      self.predictions.append, 10)
        self.inspect = ActionClient(self.node, Inspect, topics.INSPECT)
        self.reload = self.node.create_client(ReloadModel, topics.RELOAD_MODEL)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def until(self, condition, timeout=30.0):
        return spin_until(self.executor, condition, timeout)

    def done(self, future, timeout=30.0):
        assert self.until(future.done, timeout), 'no answer in time'
        return future.result()

    def call_reload(self, path):
        from softmaint_interfaces.srv import ReloadModel
        return self.done(self.reload.call_async(ReloadModel.Request(model_path=str(path))))

    def goal(self, duration, min_windows, feedback):
        from softmaint_interfaces.action import Inspect
        return self.done(self.inspect.send_goal_async(
            Inspect.Goal(duration=duration, min_windows=min_windows),
            feedback_callback=lambda msg: feedback.append(msg.feedback)))


@pytest.fixture
def params_file(tmp_path):
    """The shipped parameters with the maintenance log in tmp_path."""
    params = yaml.safe_load((REPO / 'config' / 'softmaint.yaml').read_text())
    params['softmaint_agent']['ros__parameters']['log_path'] = str(tmp_path / 'log.db')
    path = tmp_path / 'softmaint.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


def _model_copy(directory: Path, corrupt: bool = False) -> Path:
    """Copy the committed model with its metadata and signature (development key)."""
    from softmaint_core.signing import signature_path
    directory.mkdir()
    onnx = directory / MODEL.name
    shutil.copyfile(MODEL.with_suffix('.json'), onnx.with_suffix('.json'))
    shutil.copyfile(signature_path(MODEL), signature_path(onnx))
    data = bytearray(MODEL.read_bytes())
    if corrupt:
        data[len(data) // 2] ^= 0xFF      # one flipped byte: the signed SHA-256 no longer matches
    onnx.write_bytes(bytes(data))
    return onnx


@pytest.mark.slow
def test_suite_decides_inspects_and_reloads_across_processes(ros_context, spawn, params_file,
                                                               tmp_path):
    proc = spawn(['-m', 'softmaint.bringup', 'use_sim:=true', 'scenario:=leak',
                  f'params_file:={params_file}'], wait_for_line='started softmaint_agent')
    operator = Operator(ros_context)
    try:
        assert operator.until(lambda: len(operator.predictions) >= 2, 60.0), \
            'no predictions from the suite'
        assert operator.until(lambda: operator.decisions, 10.0), 'no latched decision'
        first = operator.predictions[0]
        assert first.model_id == MODEL_ID and len(first.damage_probs) == 5
        assert sum(first.damage_probs) == pytest.approx(1.0, abs=1e-5)
        decision = operator.decisions[-1]
        assert decision.model_id == MODEL_ID and decision.reason

        assert operator.inspect.wait_for_server(timeout_sec=10.0)
        feedback = []
        handle = operator.goal(4.0, 2, feedback)
        assert handle.accepted
        response = operator.done(handle.get_result_async(), 30.0)
        assert response.status == GoalStatus.STATUS_SUCCEEDED
        assert response.result.windows_seen >= 2 and feedback
        assert response.result.summary.startswith('Inspected')
        assert not operator.goal(-1.0, 2, []).accepted

        feedback.clear()
        handle = operator.goal(60.0, 5, feedback)
        assert operator.until(lambda: feedback, 20.0), 'no inspection feedback'
        operator.done(handle.cancel_goal_async())
        assert operator.done(handle.get_result_async()).status == GoalStatus.STATUS_CANCELED

        bad = operator.call_reload(_model_copy(tmp_path / 'corrupt', corrupt=True))
        assert not bad.success and 'sha' in bad.message.lower()
        assert bad.model_id == MODEL_ID
        seen = len(operator.predictions)
        assert operator.until(lambda: len(operator.predictions) > seen + 1, 20.0), \
            'the suite stopped predicting after a refused reload'
        good = operator.call_reload(_model_copy(tmp_path / 'good'))
        assert good.success, good.message
    finally:
        operator.node.destroy_node()
    os.kill(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert 'Traceback' not in output, output
    with MaintenanceLog(tmp_path / 'log.db', create=False) as log:
        kinds = {entry.kind for entry in log.query()}
    assert {'decision', 'model_change'} <= kinds
