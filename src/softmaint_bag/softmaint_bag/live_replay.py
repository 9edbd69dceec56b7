"""
Replay a bag into the live suite and capture what it publishes (agreement test and benchmark).

Starts `softmaint-bringup use_sim_time:=true` with a parameter file derived from the suite's
(reliable, deep sensor queues so nothing is lost; no emergency stop service; a private log),
waits until the suite is connected, plays the bag with softmaint-play --clock and collects the
predictions (by window stamp) and decisions.
"""
from dataclasses import dataclass, field
from pathlib import Path
import subprocess
import sys
import time
from typing import Dict, List

from softmaint_core import topics
from softmaint_ros.children import child_env
import yaml


SENSOR_TOPICS = ['/' + topic for _, topic in topics.SENSORS.values()]
# /clock ticks per bag second and the pause before and after each (softmaint-play): the suite
# takes what was recorded before a tick before its clock reaches it, and runs its timers due at
# the tick before later messages arrive, as long as it keeps up (on a busy machine: pause more,
# replay slower).
CLOCK_HZ, CLOCK_SETTLE = 10, 0.02


def replay_params(source: Path, out: Path, log_path: Path, **thresholds) -> Path:
    """Write the suite's parameter file `source` adapted for a replay to `out`; return it."""
    params = yaml.safe_load(Path(source).read_text())
    ingestion = params['softmaint_ingestion']['ros__parameters']
    ingestion['qos_overrides'] = {
        topic: {'subscription': {'reliability': 'reliable', 'depth': 1000}}   # no YAML aliases
        for topic in SENSOR_TOPICS}
    agent = params['softmaint_agent']['ros__parameters']
    agent['log_path'] = str(log_path)
    agent['emergency_stop_service'] = ''
    agent.setdefault('thresholds', {}).update(thresholds)
    Path(out).write_text(yaml.safe_dump(params))
    return Path(out)


def _stamp_ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


@dataclass
class Capture:
    """What the live suite published during a replay."""

    predictions: Dict[int, object] = field(default_factory=dict)   # window end [ns] -> msg
    decisions: List[object] = field(default_factory=list)


class Listener:
    """A node that records the suite's predictions and decisions into a Capture."""

    def __init__(self, context=None):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction
        self.node = Node('softmaint_replay_listener', context=context)
        self.capture = Capture()
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(
            MaintenancePrediction, topics.PREDICTION,
            lambda msg: self.capture.predictions.__setitem__(_stamp_ns(msg.header.stamp), msg),
            qos)
        self.node.create_subscription(MaintenanceDecision, topics.DECISION,
                                      self.capture.decisions.append, qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def suite_ready(self) -> bool:
        """Return whether ingestion, inference and agent are up and connected."""
        count = self.node.count_subscribers
        return (all(count(t) > 0 for t in SENSOR_TOPICS) and count(topics.WINDOW) > 0
                and count(topics.PREDICTION) > 1
                and self.node.count_publishers(topics.DECISION) > 0)

    def spin_until(self, condition, timeout: float) -> bool:
        """Spin until condition() or `timeout` s; return condition()."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return condition()

    def wait_until_quiet(self, quiet: float = 1.0, timeout: float = 10.0) -> None:
        """Spin until no prediction arrived for `quiet` s (the last ones still on their way)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = len(self.capture.predictions)
            self.spin_until(lambda: False, quiet)
            if len(self.capture.predictions) == before:
                return

    def close(self) -> None:
        """Destroy the node."""
        self.executor.shutdown()
        self.node.destroy_node()


def suite_command(model: Path, params: Path) -> List[str]:
    """Command line of the suite on sim time."""
    return [sys.executable, '-m', 'softmaint.bringup', 'use_sim_time:=true',
            f'params_file:={params}', f'model:={model}', 'log_level:=warn']


def player_command(bag: Path, rate: float, settle: float = CLOCK_SETTLE) -> List[str]:
    """Command line of the player for a deterministic replay of the sensor topics."""
    return [sys.executable, '-m', 'softmaint_bag.player_node', str(bag), '--rate', str(rate),
            '--clock', str(CLOCK_HZ), '--clock-settle', str(settle),
            '--topics', *SENSOR_TOPICS, '--wait-for-subscribers', '20']


def play(listener: Listener, bag: Path, rate: float, timeout: float,
         settle: float = CLOCK_SETTLE) -> float:
    """Play `bag` into the running suite; return the player's wall time [s]."""
    start = time.monotonic()
    player = subprocess.Popen(player_command(bag, rate, settle), env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if not listener.spin_until(lambda: player.poll() is not None, timeout):
            raise TimeoutError(f'the player did not finish {bag} in {timeout} s')
    finally:
        if player.poll() is None:
            player.kill()
        output = player.communicate()[0]
    if player.returncode != 0:
        raise RuntimeError(f'softmaint-play failed ({player.returncode}): {output}')
    return time.monotonic() - start
