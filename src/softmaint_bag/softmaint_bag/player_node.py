"""
Play a rosbag2 bag (sqlite3 or MCAP) into a live ROS 2 graph, where `ros2 bag play` is missing.

    softmaint-play BAG [--rate 2.0] [--start-offset 10] [--topics /a /b] [--loop] [--clock 100]

Messages are published as recorded (CDR bytes, no re-serialisation) with their original timing
scaled by the rate; with --clock, rosgraph_msgs/Clock carries bag time so nodes running with
use_sim_time follow the bag. On a ROS 2 distro prefer `ros2 bag play --clock`.
"""
import argparse
import importlib
import sys
import time

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from .reading import Bag, BagError

# Seconds a subscriber needs to match a publisher that already matched it (DDS discovery).
DISCOVERY_SETTLE = 0.3


def message_class(msgtype: str):
    """Return the Python class of a ROS 2 type name like 'sensor_msgs/msg/Image', or None."""
    package, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError):
        return None


class BagPlayer(Node):
    """Publishes the messages of a bag on their topics with the recorded timing."""

    def __init__(self, bag: Bag, topics=None, clock_rate: float = 0.0):
        super().__init__('softmaint_bag_player')
        self.skipped = {}
        self._topic_publishers = {}
        for topic in bag.topics.values():
            if topics and topic.name not in topics:
                continue
            cls = message_class(topic.msgtype)
            if cls is None:
                self.get_logger().warning(
                    f'skipping {topic.name}: type {topic.msgtype} is not installed here')
                self.skipped[topic.name] = 0
                continue
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if topic.latched
                             else DurabilityPolicy.VOLATILE)
            self._topic_publishers[topic.name] = self.create_publisher(cls, topic.name, qos)
        self._clock = self.create_publisher(Clock, '/clock', 10) if clock_rate > 0 else None
        self._clock_period = 1.0 / clock_rate if clock_rate > 0 else float('inf')
        self.published = 0

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Wait until every topic has a matched subscriber (or `timeout` s); return success."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in self._topic_publishers.values()):
                # Discovery is asymmetric: the subscriber may not know this publisher yet and
                # would drop what it sends now. Give its side a moment to match as well.
                time.sleep(DISCOVERY_SETTLE)
                return True
            time.sleep(0.01)
        return False

    def play(self, bag: Bag, rate: float, start_offset: float, topics=None) -> None:
        """Publish every selected record once, paced by `rate` (x real time)."""
        wall_start, bag_start = None, None
        for record in bag.records(topics, start_offset):
            publisher = self._topic_publishers.get(record.topic)
            if publisher is None:
                self.skipped[record.topic] = self.skipped.get(record.topic, 0) + 1
                continue
            if wall_start is None:
                wall_start, bag_start = time.monotonic(), record.stamp
            due = wall_start + (record.stamp - bag_start) / 1e9 / rate
            self._wait_until(due, bag_start, wall_start, rate)
            self._publish_clock(record.stamp)
            publisher.publish(record.data)
            self.published += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until reliable subscribers acknowledged everything published (before exit)."""
        return all(p.wait_for_all_acked(Duration(seconds=timeout))
                   for p in self._topic_publishers.values())

    def _wait_until(self, due: float, bag_start: int, wall_start: float, rate: float) -> None:
        """Sleep until `due`, publishing /clock at its rate in the meantime."""
        while (remaining := due - time.monotonic()) > 0:
            time.sleep(min(remaining, self._clock_period))
            if self._clock is not None and due - time.monotonic() > 0:
                elapsed = (time.monotonic() - wall_start) * rate
                self._publish_clock(bag_start + int(elapsed * 1e9))

    def _publish_clock(self, stamp_ns: int) -> None:
        if self._clock is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
            self._clock.publish(msg)


def parse_args(argv):
    """Command-line arguments of softmaint-play."""
    parser = argparse.ArgumentParser(prog='softmaint-play', description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', help='rosbag2 directory (or .mcap / .db3 file)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor (> 0)')
    parser.add_argument('--start-offset', type=float, default=0.0,
                        help='seconds after the bag start to begin at')
    parser.add_argument('--topics', nargs='+', help='play only these topics')
    parser.add_argument('--loop', action='store_true', help='play again and again')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                        help='before playing, wait up to S seconds until every topic has a '
                             'subscriber, so nothing is published into the void')
    parser.add_argument('--clock', type=float, default=0.0, metavar='HZ',
                        help='publish /clock with bag time at this rate (0 = off)')
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error('--rate must be > 0')
    if args.start_offset < 0 or args.clock < 0:
        parser.error('--start-offset and --clock must be >= 0')
    return args


def main(args=None):
    """Entry point of softmaint-play."""
    options = parse_args(sys.argv[1:] if args is None else args)
    rclpy.init()
    node = None
    try:
        with Bag(options.bag) as bag:
            node = BagPlayer(bag, options.topics, options.clock)
            if options.wait_for_subscribers and not node.wait_for_subscribers(
                    options.wait_for_subscribers):
                node.get_logger().warning('not every topic has a subscriber; playing anyway')
            print(f'playing {options.bag}: {len(bag.topics)} topics, '
                  f'{(bag.end - bag.start) / 1e9:.1f} s at {options.rate}x', flush=True)
            while True:
                node.play(bag, options.rate, options.start_offset, options.topics)
                if not options.loop:
                    break
        node.flush()
        skipped = sum(node.skipped.values())
        print(f'published {node.published} messages, skipped {skipped} '
              f'({sorted(node.skipped)})', flush=True)
        return 0
    except BagError as err:
        print(f'softmaint-play: {err}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
