"""
Record topics to a rosbag2 MCAP bag where rosbag2 is missing.

    softmaint-record --out BAG_DIR --topics /camera/image_raw /tactile [--duration 30]
                     [--ros-args -p use_sim_time:=true]

Messages are stored as received (CDR bytes from a raw subscription) with their receive time on
the node clock (with use_sim_time: the /clock of a simulation, so bag time is simulated time), and
the bag carries full message definitions, so `ros2 bag` and `rosbags` read it. On a ROS 2 distro
prefer `ros2 bag record -s mcap`.
"""
import argparse
from pathlib import Path
import sys
import time
from typing import Optional

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.rosbag2 import StoragePlugin, Writer
from softmaint_core.bagtypes import typestore
from softmaint_core.shutdown import spin_until_stopped, stop_on_signals
from softmaint_ros.message_types import message_class


class BagRecorder(Node):
    """Subscribes to topics as they appear and writes every message to an MCAP bag."""

    def __init__(self, out: Path, topics, best_effort: bool = False):
        super().__init__('softmaint_bag_recorder')
        self._store = typestore()
        self._writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._wanted = list(topics)
        self._connections = {}
        self._qos = qos_profile_sensor_data if best_effort else QoSProfile(
            depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.counts = {}
        self.create_timer(0.1, self._discover)

    def _discover(self) -> None:
        """Subscribe to wanted topics once their type is known from the graph."""
        for name, types in self.get_topic_names_and_types():
            if name not in self._wanted or name in self._connections:
                continue
            msgtype = types[0]
            if message_class(msgtype) is None or msgtype not in self._store.fielddefs:
                self.get_logger().error(f'cannot record {name}: type {msgtype} is unknown here')
                self._wanted.remove(name)
                continue
            self._connections[name] = self._writer.add_connection(
                name, msgtype, typestore=self._store)
            self.counts[name] = 0
            self.create_subscription(message_class(msgtype), name,
                                     lambda data, n=name: self._write(n, data), self._qos,
                                     raw=True)
            self.get_logger().info(f'recording {name} ({msgtype})')

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
                        help='subscribe best-effort (sensor-data QoS) instead of reliable')
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
