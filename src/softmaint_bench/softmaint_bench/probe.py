"""The benchmark's own subscriber: windows, predictions, decisions and ingestion's counts."""
from dataclasses import dataclass, field
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .streams import sensor_topics, SOURCES


@dataclass
class WindowRecord:
    """What the probe saw of one SensorWindow."""

    sequence: int
    end_ns: int
    last_input_ns: int
    received_ns: int
    unavailable: Tuple[str, ...]        # 'name:STATUS' of each modality that is not AVAILABLE
    prediction_ns: Optional[int] = None
    decision_ns: Optional[int] = None


@dataclass
class RobotView:
    """Everything the probe collects for one namespace."""

    windows: Dict[int, WindowRecord] = field(default_factory=dict)     # by end stamp
    # Predictions and decisions that reached the probe before their window (window end -> ns).
    early_predictions: Dict[int, int] = field(default_factory=dict)
    early_decisions: Dict[int, int] = field(default_factory=dict)
    ingestion: Dict[str, Tuple[int, int]] = field(default_factory=dict)   # accepted, rejected
    ingestion_reports: int = 0
    ingestion_stamp_ns: int = 0         # when ingestion counted them (its report's stamp)
    decisions: int = 0


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class Probe:
    """An rclpy node in this process that watches windows, predictions, decisions, diagnostics."""

    def __init__(self):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('softmaint_bench_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.robots: Dict[str, RobotView] = {}
        from diagnostic_msgs.msg import DiagnosticArray
        from softmaint_core import topics
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics,
                                      100)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: B902 - the context shut down under the spin
                if self.context.ok():
                    raise

    def _now(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def watch(self, namespace: str) -> None:
        """Subscribe to the suite's outputs in `namespace`."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from softmaint_core import topics
        from softmaint_interfaces.msg import (MaintenanceDecision, MaintenancePrediction,
                                              SensorWindow)
        with self.lock:
            self.robots[namespace] = RobotView()
        ns = f'/{namespace}/'
        latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(SensorWindow, ns + topics.WINDOW,
                                      lambda m: self._on_window(namespace, m), 50)
        self.node.create_subscription(MaintenancePrediction, ns + topics.PREDICTION,
                                      lambda m: self._on_prediction(namespace, m), 50)
        self.node.create_subscription(MaintenanceDecision, ns + topics.DECISION,
                                      lambda m: self._on_decision(namespace, m), latched)

    def _on_window(self, namespace: str, msg) -> None:
        from softmaint_core.window import Status
        received = self._now()
        end = _ns(msg.header.stamp)
        unavailable = tuple(f'{t.name}:{Status(t.status).name}' for t in msg.modalities
                            if t.status != Status.AVAILABLE)
        record = WindowRecord(msg.sequence, end, _ns(msg.last_input_stamp), received,
                              unavailable)
        with self.lock:
            robot = self.robots[namespace]
            record.prediction_ns = robot.early_predictions.pop(end, None)
            record.decision_ns = robot.early_decisions.pop(end, None)
            robot.windows[end] = record

    def _on_prediction(self, namespace: str, msg) -> None:
        received, window_end = self._now(), _ns(msg.header.stamp)
        with self.lock:
            robot = self.robots[namespace]
            record = robot.windows.get(window_end)
            if record is None:          # the prediction overtook the window on its way here
                robot.early_predictions.setdefault(window_end, received)
            elif record.prediction_ns is None:
                record.prediction_ns = received

    def _on_decision(self, namespace: str, msg) -> None:
        window_end, taken = _ns(msg.prediction_stamp), _ns(msg.header.stamp)
        with self.lock:
            robot = self.robots[namespace]
            robot.decisions += 1
            if not window_end:          # the watchdog's, not about a window
                return
            record = robot.windows.get(window_end)
            if record is None:          # the decision overtook the window on its way here
                robot.early_decisions.setdefault(window_end, taken)
            elif record.decision_ns is None:
                record.decision_ns = taken

    def _on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                robot = self.robots.get(status.hardware_id.strip('/'))
                node, _, source = status.name.partition(': ')
                if robot is None or node != 'softmaint_ingestion' or source not in SOURCES:
                    continue
                values = {kv.key: kv.value for kv in status.values}
                robot.ingestion[source] = (int(values['accepted']), int(values['rejected']))
                robot.ingestion_reports += 1
                robot.ingestion_stamp_ns = _ns(msg.header.stamp)

    def wait(self, condition, timeout: float) -> bool:
        """Poll `condition()` (under the lock) until true or `timeout`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if condition():
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def ready(self, namespaces: Sequence[str], timeout: float) -> None:
        """
        Wait until every suite is up; raise RuntimeError after `timeout` seconds.

        Up: ingestion reports, inference reads windows and writes predictions, the agent reads
        them and has published a decision. Without sensor input there are no predictions
        (inference skips windows with nothing available), so that decision is the watchdog's.
        """
        from softmaint_core import topics

        def up(ns):
            robot = self.robots[ns]
            return (len(robot.ingestion) == len(SOURCES) and robot.decisions > 0
                    and self.node.count_subscribers(f'/{ns}/{topics.WINDOW}') >= 2
                    and self.node.count_publishers(f'/{ns}/{topics.PREDICTION}') >= 1
                    and self.node.count_subscribers(f'/{ns}/{topics.PREDICTION}') >= 2)
        if not self.wait(lambda: all(up(ns) for ns in namespaces), timeout):
            raise RuntimeError(f'the suites {list(namespaces)} were not all up within '
                               f'{timeout} s')

    def ingestion_qos(self, namespace: str) -> Dict[str, str]:
        """Reliability of ingestion's subscription to each sensor topic (seen by discovery)."""
        qos = {}
        for source, (_, topic) in sensor_topics(namespace).items():
            for info in self.node.get_subscriptions_info_by_topic(topic):
                if info.node_name == 'softmaint_ingestion':
                    qos[source] = info.qos_profile.reliability.name.lower()
        return qos

    def ingestion_counts(self, namespace: str) -> Dict[str, Tuple[int, int]]:
        """Messages ingestion accepted and rejected per source so far."""
        with self.lock:
            return {s: self.robots[namespace].ingestion.get(s, (0, 0)) for s in SOURCES}

    def ingestion_total(self, namespace: str) -> Tuple[int, int]:
        """Return when ingestion last reported [ns] and the messages it had received then."""
        with self.lock:
            robot = self.robots[namespace]
            return robot.ingestion_stamp_ns, sum(sum(c) for c in robot.ingestion.values())

    def settle(self, namespaces: Sequence[str], after_ns: int, hop_ns: int,
               timeout: float) -> bool:
        """
        Wait for the counts to settle after the load; return False after `timeout` seconds.

        Settled: ingestion's counts did not change over two reports and a window ending a hop
        after `after_ns` arrived (the windows before it had a hop to get their prediction).
        """
        deadline = time.monotonic() + timeout
        for namespace in namespaces:
            robot = self.robots[namespace]
            previous = None
            while True:
                with self.lock:
                    reports, counts = robot.ingestion_reports, dict(robot.ingestion)
                    finished = any(end >= after_ns + hop_ns for end in robot.windows)
                if finished and previous is not None and counts == previous[1] \
                        and reports >= previous[0] + len(SOURCES):
                    break
                if previous is None or reports >= previous[0] + len(SOURCES):
                    previous = (reports, counts)
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
        return True

    def windows(self, namespace: str, start_ns: int, end_ns: int) -> List[WindowRecord]:
        """Windows of `namespace` ending in [start_ns, end_ns], in order."""
        with self.lock:
            return sorted((r for r in self.robots[namespace].windows.values()
                           if start_ns <= r.end_ns <= end_ns), key=lambda r: r.end_ns)

    def close(self) -> None:
        """Shut the probe's context down."""
        self.context.try_shutdown()
        self._thread.join(5.0)
