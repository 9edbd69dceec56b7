"""The sim robot as a real process: every topic arrives in another process, sane and stamped."""
import signal
import time

import numpy as np
import pytest
from ros_helpers import spin_until
import yaml

NODE = ['-m', 'softmaint_sim.sim_robot', '--ros-args']
# A short scenario: dead taxel at 0.5 s, crack at 1.5 s, leak at 3 s (simulated time).
SCENARIO = {
    'name': 'short', 'domain': 'field', 'seed': 3, 'wear_acceleration': 50,
    'environment': {'temperature': 24.0, 'humidity': 0.5, 'co2': 700.0, 'pressure': 100.0},
    'events': [
        {'at': 0.5, 'sensor_fault': 'dead_taxels', 'taxels': [3]},
        {'at': 1.5, 'damage': 'crack_tear', 'severity': 0.4, 'location': 0.5},
        {'at': 3.0, 'damage': 'puncture_leak', 'severity': 0.6, 'side': 0},
    ]}


def _scenario(tmp_path, **changes):
    path = tmp_path / 'short.yaml'
    path.write_text(yaml.safe_dump({**SCENARIO, **changes}))
    return path


class Listener:
    """Subscribes to every sim robot topic (sensor QoS; reliable, latched ground truth)."""

    def __init__(self, context, clock=False):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState
        from softmaint_core import topics
        from softmaint_interfaces.msg import (ActuatorState, EnvironmentReading, GroundTruth,
                                              TactileArray)
        self.node = Node('sim_robot_listener', context=context)
        self.received = {}
        truth_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL)
        # best effort like the publisher, with room for what arrives between two spins
        sensor_qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
        streams = [(Image, topics.CAMERA, sensor_qos),
                   (TactileArray, topics.TACTILE, sensor_qos),
                   (JointState, topics.JOINT_STATES, sensor_qos),
                   (ActuatorState, topics.ACTUATION, sensor_qos),
                   (EnvironmentReading, topics.ENVIRONMENT, sensor_qos),
                   (GroundTruth, topics.GROUND_TRUTH, truth_qos)]
        if clock:
            streams.append((Clock, '/clock', 100))
        for cls, topic, qos in streams:
            self.received[topic] = []
            self.node.create_subscription(cls, topic, self.received[topic].append, qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout):
        return spin_until(self.executor, condition, timeout)

    def close(self):
        self.node.destroy_node()


def _stamp(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.mark.slow
def test_every_topic_arrives_with_sane_content_and_truth_follows_events(
        tmp_path, ros_context, spawn):
    from softmaint_core import topics
    listener = Listener(ros_context)
    rx = listener.received
    started = time.time()
    proc = spawn([*NODE, '-p', f'scenario:={_scenario(tmp_path)}', '-p', 'rate_factor:=2.0',
                  '-p', 'duration:=8.0', '-p', 'frame_id:=arm_test'],
                 wait_for_line='running scenario')
    try:
        damages = lambda: {m.damage_name for m in rx[topics.GROUND_TRUTH]}  # noqa: E731
        assert listener.spin_until(
            lambda: 'puncture_leak' in damages() and all(rx.values()), 30.0), \
            ({k: len(v) for k, v in rx.items()}, damages())
        assert proc.wait(timeout=30) == 0   # it stops by itself at the end of `duration`
        ended = time.time()
    finally:
        listener.close()

    image = rx[topics.CAMERA][-1]
    assert (image.encoding, image.height, image.width, image.step) == ('rgb8', 64, 64, 192)
    pixels = np.frombuffer(bytes(image.data), np.uint8)
    assert pixels.size == 64 * 64 * 3 and pixels.std() > 5   # a scene, not a blank frame

    tactile = rx[topics.TACTILE]
    assert {(m.rows, m.cols, m.units) for m in tactile} == {(8, 1, 'N')}
    assert tactile[-1].pitch == pytest.approx(0.42 / 8)
    late = np.array([m.data for m in tactile[-50:]])
    assert np.isnan(late[:, 3]).all() and np.isfinite(np.delete(late, 3, axis=1)).all()
    assert (np.delete(late, 3, axis=1) >= 0).all()
    assert (np.delete(late, 3, axis=1) <= tactile[-1].range_max).all()

    joints = rx[topics.JOINT_STATES]
    assert {tuple(m.name) for m in joints} == {topics.BEND_JOINTS}
    bend = np.array([m.position for m in joints])
    assert np.abs(bend).max() < 2.0 and bend.std(axis=0).min() > 1e-3   # it moves, in rad

    actuation = rx[topics.ACTUATION]
    assert {(tuple(m.name), m.units) for m in actuation} == {(topics.ACTUATORS, 'kPa')}
    command = np.array([m.command for m in actuation])
    assert command.min() >= 0.0 and command.max() <= 200.0 and command.max() > 40.0   # kPa

    env = rx[topics.ENVIRONMENT][-1]
    assert env.temperature == pytest.approx(24.0, abs=2.0)
    assert 0.0 <= env.humidity <= 1.0 and env.co2 == pytest.approx(700, abs=150)
    assert env.pressure == pytest.approx(100.0, abs=1.0)

    truth = rx[topics.GROUND_TRUTH]
    names = [m.damage_name for m in truth]
    assert names[0] == 'none' and names.index('crack_tear') < names.index('puncture_leak')
    crack = truth[names.index('crack_tear')]
    assert crack.damage_type == 2 and crack.damage_severity == pytest.approx(0.4, abs=0.01)
    assert _stamp(crack) - _stamp(truth[0]) == pytest.approx(1.5 / 2.0, abs=0.02)

    for topic in (topics.CAMERA, topics.TACTILE, topics.ENVIRONMENT, topics.GROUND_TRUTH):
        assert {m.header.frame_id for m in rx[topic]} == {'arm_test'}, topic
    # Stamps: acquisition times on the node clock (wall time here), 10 ms of sim apart = 5 ms
    stamps = np.array([_stamp(m) for m in tactile])
    assert (np.diff(stamps) > 0).all()
    assert np.median(np.diff(stamps)) == pytest.approx(0.005, abs=1e-6)
    assert started < stamps[0] and stamps[-1] < ended
    frames = np.array([_stamp(m) for m in rx[topics.CAMERA]])
    assert np.median(np.diff(frames)) == pytest.approx(0.2 / 2.0, abs=1e-6)


@pytest.mark.slow
def test_publish_clock_gives_simulated_time(tmp_path, ros_context, spawn):
    from softmaint_core import topics
    listener = Listener(ros_context, clock=True)
    rx = listener.received
    proc = spawn([*NODE, '-p', f'scenario:={_scenario(tmp_path)}', '-p', 'rate_factor:=4.0',
                  '-p', 'publish_clock:=true', '-p', 'use_sim_time:=true'],
                 wait_for_line='running scenario')
    try:
        assert listener.spin_until(lambda: len(rx[topics.TACTILE]) > 100 and all(rx.values()),
                                   30.0), {k: len(v) for k, v in rx.items()}
        proc.send_signal(signal.SIGINT)   # Ctrl-C: a clean stop, exit code 0
        assert proc.wait(timeout=20) == 0
    finally:
        listener.close()
    clock = np.array([c.clock.sec + c.clock.nanosec * 1e-9 for c in rx['/clock']])
    assert (np.diff(clock) >= 0).all()
    stamps = np.array([_stamp(m) for m in rx[topics.TACTILE]])
    assert np.median(np.diff(stamps)) == pytest.approx(0.01, abs=1e-6)  # simulated 100 Hz
    assert stamps[-1] <= clock[-1] + 0.05


def test_bad_scenario_and_parameters_exit_with_a_clear_error(tmp_path, spawn):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({**SCENARIO, 'domain': 'moon'}))
    proc = spawn([*NODE, '-p', f'scenario:={bad}'])
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2
    assert "bad.yaml.domain: 'moon' is not allowed; allowed: ['sim', 'field']" in out
    proc = spawn([*NODE, '-p', 'rate_factor:=60.0'])   # the pacing runs 50x at most
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2 and 'rate_factor' in out and 'Max: 50.0' in out
    binary = tmp_path / 'binary.yaml'
    binary.write_bytes(b'domain: \xd0\x00\xff')      # not UTF-8: the scenario, not a traceback
    proc = spawn([*NODE, '-p', f'scenario:={binary}'])
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2 and 'binary.yaml: cannot read the scenario' in out
    proc = spawn([*NODE, '-p', 'duration:=90'])
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2 and "expecting type 'DOUBLE'" in out and 'duration:=90.0' in out


@pytest.mark.slow
def test_the_emergency_stop_service_stops_the_arm(tmp_path, ros_context, spawn):
    """What the agent calls on a shutdown: confirmed, and the chambers stop cycling."""
    from softmaint_core import topics
    from std_srvs.srv import Trigger
    listener = Listener(ros_context)
    spawn([*NODE, '-p', f'scenario:={_scenario(tmp_path)}', '-p', 'rate_factor:=2.0'],
          wait_for_line='running scenario')
    try:
        client = listener.node.create_client(Trigger, topics.EMERGENCY_STOP)
        assert client.wait_for_service(timeout_sec=20.0)
        actuation = listener.received[topics.ACTUATION]
        assert listener.spin_until(lambda: len(actuation) > 100, 30.0)
        future = client.call_async(Trigger.Request())
        assert listener.spin_until(future.done, 20.0)
        assert future.result().success and 'arm stopped at' in future.result().message
        stopped = len(actuation)
        assert listener.spin_until(lambda: len(actuation) > stopped + 100, 30.0)
        # messages in flight when the stop arrived may still move; the last 50 may not
        commands = np.array([m.command for m in actuation[-50:]])
        assert np.ptp(commands, axis=0).max() < 1e-6
    finally:
        listener.close()
