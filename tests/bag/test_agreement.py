"""
Live replay and offline evaluation of the same recorded bag agree.

A short live run of the sim robot (publishing /clock, faster than real time) is recorded with
softmaint-record on use_sim_time, so bag time is simulated time; softmaint-play --clock
replays it into the suite (softmaint-bringup use_sim_time:=true) while this test captures the
predictions and decisions; softmaint-evaluate-bag runs on the same bag. Predictions for the same
window stamps must agree within 1e-4 and decisions must be identical once the live agent is past
its start-up (under sim time its watchdog sees no prediction "since time 0" and opens an
assistance request at the first /clock, which deescalate_windows clear windows withdraw).
Run with -s to see how many predictions and decisions were compared.
"""
import json
from pathlib import Path
import subprocess

import pytest
from ros_helpers import spin_until
import yaml

REPO = Path(__file__).resolve().parents[2]
SENSORS = ['/camera/image_raw', '/tactile', '/joint_states', '/actuation', '/environment']
SIM_SECONDS, SIM_RATE = 20.0, 3.0
# Real time, with a pause after each /clock tick: a replay must not outrun the suite, or its
# nodes fall behind the clock and which late messages make a window depends on the CPU.
PLAY_RATE, CLOCK_HZ, CLOCK_SETTLE = 1.0, 10, 0.05
# Shorter hysteresis than the shipped file (both sides read it): the live start-up request is
# withdrawn sooner, so more decisions are compared.
DEESCALATE_WINDOWS = 4


def _params(tmp_path) -> Path:
    """The suite's parameter file, with reliable deep sensor queues (nothing lost) and no robot."""
    params = yaml.safe_load((REPO / 'config' / 'softmaint.yaml').read_text())
    ingestion = params['softmaint_ingestion']['ros__parameters']
    ingestion['qos_overrides'] = {topic: {'subscription': {'reliability': 'reliable',
                                                            'depth': 1000}}
                                  for topic in SENSORS}
    agent = params['softmaint_agent']['ros__parameters']
    agent['log_path'] = str(tmp_path / 'maintenance.db')
    agent['emergency_stop_service'] = ''
    agent['thresholds']['deescalate_windows'] = DEESCALATE_WINDOWS
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


def _record(tmp_path, spawn) -> Path:
    bag = tmp_path / 'run'
    recorder = spawn(['-m', 'softmaint_bag.recorder_node', '--out', str(bag), '--best-effort',
                      '--topics', *SENSORS, '/softmaint/ground_truth',
                      '--ros-args', '-p', 'use_sim_time:=true'],
                     wait_for_line='recording to')
    robot = spawn(['-m', 'softmaint_sim.sim_robot', '--ros-args', '-p', 'scenario:=default',
                   '-p', f'duration:={SIM_SECONDS}', '-p', f'rate_factor:={SIM_RATE}',
                   '-p', 'publish_clock:=true'])
    assert robot.wait(timeout=60) == 0, robot.stdout.read()
    recorder.send_signal(subprocess.signal.SIGINT)
    output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0 and "'/tactile'" in output, output
    return bag


class Listener:
    """Captures the suite's predictions and decisions."""

    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction
        self.node = Node('agreement_listener', context=context)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.predictions, self.decisions = {}, []
        self.node.create_subscription(MaintenancePrediction, 'softmaint/prediction',
                                      self._on_prediction, qos)
        self.node.create_subscription(MaintenanceDecision, 'softmaint/decision',
                                      self.decisions.append, qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _on_prediction(self, msg):
        self.predictions[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = msg

    def suite_ready(self) -> bool:
        count = self.node.count_subscribers
        return (all(count(t) > 0 for t in SENSORS) and count('softmaint/window') > 0
                and count('softmaint/prediction') > 1 and self.node.count_publishers(
                    'softmaint/decision') > 0)


@pytest.mark.slow
def test_live_replay_and_offline_evaluation_agree(tmp_path, spawn, ros_context):
    bag = _record(tmp_path, spawn)
    params = _params(tmp_path)
    model = REPO / 'models' / 'student.onnx'
    listener = Listener(ros_context)
    spawn(['-m', 'softmaint.bringup', 'use_sim_time:=true', f'params_file:={params}',
           f'model:={model}'])
    assert spin_until(listener.executor, listener.suite_ready, 40.0), 'suite not up'
    player = spawn(['-m', 'softmaint_bag.player_node', str(bag), '--rate', str(PLAY_RATE),
                    '--clock', str(CLOCK_HZ), '--clock-settle', str(CLOCK_SETTLE), '--topics', *SENSORS,
                    '--wait-for-subscribers', '20'])
    assert spin_until(listener.executor, lambda: player.poll() is not None, 60.0)
    assert player.returncode == 0, player.stdout.read()

    out = tmp_path / 'offline'
    from softmaint_bag.evaluate_cli import main
    assert main([str(bag), '--model', str(model), '--params', str(params),
                 '--out', str(out)]) == 0
    offline = {w['end_ns']: w for w in map(json.loads, (out / 'windows.jsonl').open())}
    offline_predicted = sorted(end for end, w in offline.items() if 'action' in w)
    # The live suite's last predictions may still be on their way.
    assert spin_until(listener.executor,
                      lambda: offline_predicted[-1] in listener.predictions, 10.0)
    listener.node.destroy_node()

    assert len(offline_predicted) >= 12, offline_predicted
    assert sorted(listener.predictions) == offline_predicted      # the same windows
    for end in offline_predicted:
        live, expected = listener.predictions[end], offline[end]
        assert list(live.input_modalities) == expected['available'], end
        for head in ('fatigue_probs', 'damage_probs'):
            assert list(getattr(live, head)) == pytest.approx(expected[head], abs=1e-4), \
                (end, head)
        assert live.urgency == pytest.approx(expected['urgency'], abs=1e-4), end
        assert live.uncertainty == pytest.approx(expected['uncertainty'], abs=1e-4), end

    warm_up = DEESCALATE_WINDOWS + 1   # the live start-up request is withdrawn by then
    compared = set()
    for decision in listener.decisions:
        stamp = decision.prediction_stamp.sec * 10**9 + decision.prediction_stamp.nanosec
        basis = {kv.key: kv.value for kv in decision.evidence}.get('basis')
        if basis != 'prediction' or stamp not in offline_predicted[warm_up:]:
            continue
        assert decision.action_name == offline[stamp]['action'], stamp
        assert decision.workload_limit == pytest.approx(offline[stamp]['workload_limit'])
        compared.add(stamp)
    print(f'agreement: {len(offline_predicted)} predictions compared (1e-4), decisions of '
          f'{len(compared)} windows compared after {warm_up} start-up windows')
    assert len(compared) >= len(offline_predicted) - warm_up - 1
