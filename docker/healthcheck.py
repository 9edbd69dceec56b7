#!/usr/bin/env python3
"""
Health of the softmaint suite, for the robot image's Docker HEALTHCHECK.

    healthcheck.py [--timeout 15] [--settle 3] [--nodes NAME,...] [--prefix softmaint]

Healthy (exit 0) when every node of the suite is in the ROS graph and the latest status of each
of the suite's checks on /diagnostics is OK or WARN. Unhealthy (exit 1) when a node is missing,
no status of the suite arrives before the timeout, or any status is ERROR or STALE. It prints one
line saying why; Docker keeps it (docker inspect --format '{{json .State.Health}}' CONTAINER).
"""
import argparse
from collections import Counter
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

DIAGNOSTICS = '/diagnostics'
LEVEL_NAMES = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
ERROR = 2  # this level and above (STALE, anything unknown) is unhealthy
# Best effort matches reliable and best-effort publishers alike.
DIAGNOSTICS_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
# A fresh process every 30 s: keep rcl from writing one log file per check into ~/.ros/log.
ROS_ARGS = ['--ros-args', '--disable-external-lib-logs']

Statuses = Dict[str, Tuple[int, str]]


def level_of(status: DiagnosticStatus) -> int:
    """Return the level of a status as an int (rclpy gives `byte` fields as bytes)."""
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


def level_name(level: int) -> str:
    """Return OK, WARN, ERROR, STALE, or the number of a level outside the message's constants."""
    return LEVEL_NAMES.get(level, f'level {level}')


def suite_nodes() -> List[str]:
    """Names of the nodes `ros2 launch softmaint bringup.launch.py` starts with its defaults."""
    from softmaint.bringup import plan, resolve
    return [node.name for node in plan(resolve({}))]


def verdict(statuses: Statuses, missing_nodes: Sequence[str]) -> Tuple[bool, str]:
    """Return (healthy, one line why) from the latest status per name and the missing nodes."""
    problems = [f'node {name} is not running' for name in missing_nodes]
    if not statuses:
        problems.append(f'no status of the suite on {DIAGNOSTICS}')
    problems += [f'{name}: {level_name(level)} ({message})'
                 for name, (level, message) in sorted(statuses.items()) if level >= ERROR]
    if problems:
        return False, 'unhealthy: ' + '; '.join(problems)
    counts = Counter(level_name(level) for level, _ in statuses.values())
    summary = ', '.join(f'{count} {name}' for name, count in sorted(counts.items()))
    return True, f'healthy: {len(statuses)} statuses ({summary})'


class Listener:
    """Latest status per name on /diagnostics (names with the prefix) and the graph's nodes."""

    def __init__(self, node: Node, prefix: str):
        self.node = node
        self.prefix = prefix
        self.statuses: Statuses = {}
        self.first_status_at: Optional[float] = None
        node.create_subscription(DiagnosticArray, DIAGNOSTICS, self.on_diagnostics,
                                 DIAGNOSTICS_QOS)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Keep the newest status of each of the suite's checks."""
        for status in msg.status:
            if status.name.startswith(self.prefix):
                self.statuses[status.name] = (level_of(status), status.message)
                if self.first_status_at is None:
                    self.first_status_at = time.monotonic()

    def missing(self, expected: Iterable[str]) -> List[str]:
        """Return the expected node names that are not in the ROS graph (any namespace)."""
        running = {name for name, _ in self.node.get_node_names_and_namespaces()}
        return [name for name in expected if name not in running]


def check(expected: Sequence[str], prefix: str, timeout: float, settle: float,
          context: Context) -> Tuple[bool, str]:
    """Listen until every node is seen and statuses settled, or until timeout; judge."""
    node = Node('softmaint_healthcheck', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    listener = Listener(node, prefix)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            settled = (listener.first_status_at is not None
                       and time.monotonic() - listener.first_status_at >= settle)
            if settled and not listener.missing(expected):
                break
        return verdict(listener.statuses, listener.missing(expected))
    finally:
        executor.shutdown()
        node.destroy_node()


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--timeout', type=float, default=15.0,
                        help='give up after this many seconds [s] (default 15)')
    parser.add_argument('--settle', type=float, default=3.0,
                        help='after the first status, listen this long for the statuses of '
                             'the other nodes (longer than their period) [s] (default 3)')
    parser.add_argument('--nodes', type=lambda text: [n for n in text.split(',') if n],
                        default=None,
                        help='comma-separated node names that must run (default: the nodes '
                             'bringup.launch.py starts)')
    parser.add_argument('--prefix', default='softmaint',
                        help='judge only statuses whose name starts with this (default softmaint)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Exit 0 when the suite is healthy, 1 otherwise (Docker's convention)."""
    args = parse_args(argv)
    expected = suite_nodes() if args.nodes is None else args.nodes
    context = Context()
    rclpy.init(args=ROS_ARGS, context=context)
    try:
        healthy, why = check(expected, args.prefix, args.timeout, args.settle, context)
    finally:
        context.try_shutdown()
    print(why)
    return 0 if healthy else 1


if __name__ == '__main__':
    sys.exit(main())
