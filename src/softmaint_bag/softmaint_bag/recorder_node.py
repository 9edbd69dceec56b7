"""
Record topics to a rosbag2 MCAP bag where rosbag2 is missing.

    softmaint-record --out BAG_DIR --topics /camera/image_raw /tactile [--duration 30]
                     [--ros-args -p use_sim_time:=true]

Messages are stored as received (CDR bytes from a raw subscription) with their receive time on
the node clock (with use_sim_time: the /clock of a simulation, so bag time is simulated time), and
the bag carries full message definitions, so `ros2 bag` and `rosbags` read it. As `ros2 bag
record` does, a topic is subscribed once it has a publisher, with the QoS its publishers offer
(reliable if all of them are, transient local if all of them are: a latched topic's last message
is recorded even if it was published before the recorder started), and their offered QoS goes
into the bag, so that a replay publishes latched topics latched. On a ROS 2 distro prefer
`ros2 bag record -s mcap`.
"""
import argparse
from pathlib import Path
import sys
import time
from typing import Optional

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                QosReliability, QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer
from softmaint_core.bagtypes import typestore
from softmaint_core.shutdown import spin_until_stopped, stop_on_signals
from softmaint_ros.message_types import message_class


# rosbag2's notation of an infinite QoS duration (RMW_DURATION_INFINITE) in metadata.yaml
INFINITE = QosTime(2147483647, 4294967295)


def _bag_time(duration: Duration) -> QosTime:
    if duration.nanoseconds >= 2**63 - 1:
        return INFINITE
    return QosTime(*divmod(duration.nanoseconds, 1_000_000_000))


def offered_qos(profile: QoSProfile) -> Qos:
    """Return a publisher's offered QoS as a bag's metadata records it."""
    return Qos(QosHistory(profile.history), profile.depth, QosReliability(profile.reliability),
               QosDurability(profile.durability), _bag_time(profile.deadline),
               _bag_time(profile.lifespan), QosLiveliness(profile.liveliness),
               _bag_time(profile.liveliness_lease_duration),
               profile.avoid_ros_namespace_conventions)


def subscription_qos(offered, best_effort: bool = False) -> QoSProfile:
    """Return the QoS that matches every offered profile (reliable, latched where all are)."""
    reliable = not best_effort and all(
        p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = reliable and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        depth=1000,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def topic_name(name: str) -> str:
    """Return `name` fully qualified, as the graph names topics ('tactile' -> '/tactile')."""
    return name if name.startswith('/') else f'/{name}'


class BagRecorder(Node):
    """Subscribes to topics as they get publishers and writes every message to an MCAP bag."""

    def __init__(self, out: Path, topics, best_effort: bool = False):
        super().__init__('softmaint_bag_recorder')
        self._store = typestore()
        self._writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._wanted = [topic_name(t) for t in topics]
        self._connections = {}
        self._best_effort = best_effort
        self.counts = {}
        self.create_timer(0.1, self._discover)

    def _discover(self) -> None:
        """Subscribe to wanted topics once they have a publisher and a type known here."""
        for name, types in self.get_topic_names_and_types():
            if name not in self._wanted or name in self._connections:
                continue
            offered = [info.qos_profile for info in self.get_publishers_info_by_topic(name)]
            if not offered:
                continue
            msgtype = types[0]
            if message_class(msgtype) is None or msgtype not in self._store.fielddefs:
                self.get_logger().error(f'cannot record {name}: type {msgtype} is unknown here')
                self._wanted.remove(name)
                continue
            self._connections[name] = self._writer.add_connection(
                name, msgtype, typestore=self._store,
                offered_qos_profiles=[offered_qos(p) for p in offered])
            self.counts[name] = 0
            qos = subscription_qos(offered, self._best_effort)
            self.create_subscription(message_class(msgtype), name,
                                     lambda data, n=name: self._write(n, data), qos, raw=True)
            self.get_logger().info(f'recording {name} ({msgtype}, {qos.reliability.name} '
                                   f'{qos.durability.name})')

    def never_recorded(self):
        """Return the wanted topics that got no message."""
        return [t for t in self._wanted if not self.counts.get(t)]

    def _write(self, topic: str, data: bytes) -> None:
        self._writer.write(self._connections[topic], self.get_clock().now().nanoseconds, data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (writes the MCAP summary and metadata.yaml)."""
        self._writer.close()


def drain(executor, node: BagRecorder, quiet_spins: int = 3) -> None:
    """Take what DDS already delivered until a few spins in a row bring nothing new."""
    quiet, total = 0, sum(node.counts.values())
    while quiet < quiet_spins:
        executor.spin_once(timeout_sec=0.05)
        quiet, total = (quiet + 1, total) if sum(node.counts.values()) == total else (
            0, sum(node.counts.values()))


def _close(node: Optional[BagRecorder]) -> None:
    """Finish the bag, then release the node and the context even if finishing failed."""
    try:
        if node is not None:
            node.close()
            print(f'recorded {node.counts}', flush=True)
            silent = node.never_recorded()
            if silent:
                node.get_logger().warning(f'no message recorded on {silent} (no publisher, or '
                                          'a misspelt topic?)')
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def main(args=None):
    """Entry point of softmaint-record."""
    parser = argparse.ArgumentParser(prog='softmaint-record', description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, type=Path, help='bag directory to create')
    parser.add_argument('--topics', required=True, nargs='+', help='topics to record')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after S seconds')
    parser.add_argument('--best-effort', action='store_true',
                        help='subscribe best effort even where every publisher is reliable')
    argv = sys.argv if args is None else ['softmaint-record', *args]
    options = parser.parse_args(remove_ros_args(argv)[1:])
    if options.out.exists():
        parser.error(f'{options.out} exists: choose a new bag directory')
    # Own the signals so that Ctrl-C / SIGTERM stop recording without shutting the context
    # down first: messages already received by DDS are then drained into the bag. They set a
    # flag, so no exception lands in the middle of writing a message.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node = None
    try:
        node = BagRecorder(options.out, options.topics, options.best_effort)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        print(f'recording to {options.out}', flush=True)
        deadline = time.monotonic() + options.duration if options.duration else float('inf')
        try:
            spin_until_stopped(executor, stop, until=lambda: time.monotonic() >= deadline,
                               period=0.1)
        except ExternalShutdownException:
            pass
        drain(executor, node)
    finally:
        _close(node)
    return 0


if __name__ == '__main__':
    sys.exit(main())
