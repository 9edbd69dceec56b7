"""
Play a rosbag2 bag (sqlite3 or MCAP) into a live ROS 2 graph, where `ros2 bag play` is missing.

    softmaint-play BAG [--rate 2.0] [--start-offset 10] [--topics /a /b] [--loop] [--clock 100]

Messages are published as recorded (CDR bytes, no re-serialisation) with their original timing
scaled by the rate; with --clock, rosgraph_msgs/Clock carries bag time so nodes running with
use_sim_time follow the bag. On a ROS 2 distro prefer `ros2 bag play --clock`.

/clock ticks fall on a fixed grid of the bag timeline (multiples of 1/HZ, plus the bag start),
each published after every message recorded before it and before any message recorded at or
after it; --clock-settle S pauses S before and after each tick. Subscribers then take the
messages recorded before a tick while their clock is still before it, and their timers due at
the tick run before the later messages arrive, as live: a message received at or after a window
end is not in that window. As long as the subscribers keep up (2 S < 1 / (HZ * rate)), a replay
is deterministic; offline evaluation uses the same rule.
"""
import argparse
import sys
import threading
import time
from typing import List

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock
from softmaint_core.shutdown import stop_on_signals
from softmaint_ros.message_types import message_class

from .reading import Bag, BagError

# Seconds a subscriber needs to match a publisher that already matched it (DDS discovery).
DISCOVERY_SETTLE = 0.3


class BagPlayer(Node):
    """Publishes the messages of a bag on their topics with the recorded timing."""

    def __init__(self, bag: Bag, topics=None, clock_rate: float = 0.0,
                 clock_settle: float = 0.0):
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
        self._tick_ns = round(1e9 / clock_rate) if clock_rate > 0 else 0
        self._clock_settle = clock_settle
        self._clock_ns = None     # last /clock published [ns of bag time]
        self.published = 0

    def wait_for_subscribers(self, timeout: float, stop: threading.Event) -> bool:
        """Wait until every topic has a matched subscriber (or `timeout` s, or `stop`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self._topic_publishers.values()):
                # Discovery is asymmetric: the subscriber may not know this publisher yet and
                # would drop what it sends now. Give its side a moment to match as well.
                stop.wait(DISCOVERY_SETTLE)
                return True
            stop.wait(0.01)
        return False

    def play(self, bag: Bag, rate: float, start_offset: float, topics,
             stop: threading.Event) -> None:
        """Publish every selected record once, paced by `rate` (x real time), until `stop`."""
        wall_start, bag_start = None, None
        self._clock_ns = None
        for record in bag.records(topics, start_offset):
            if stop.is_set():
                return
            publisher = self._topic_publishers.get(record.topic)
            if publisher is None:
                self.skipped[record.topic] = self.skipped.get(record.topic, 0) + 1
                continue
            if wall_start is None:
                wall_start, bag_start = time.monotonic(), record.stamp
                self._publish_clock(record.stamp)
                stop.wait(self._clock_settle)

            def due(stamp):
                return wall_start + (stamp - bag_start) / 1e9 / rate

            for tick in self._ticks_before(record.stamp):
                # Before the tick: subscribers finish the messages recorded before it. After
                # it: their timers due at the tick run before the later messages arrive.
                _sleep_until(due(tick) + self._clock_settle, stop)
                self._publish_clock(tick)
                stop.wait(self._clock_settle)
            if _sleep_until(due(record.stamp), stop):
                return
            publisher.publish(record.data)
            self.published += 1

    def _ticks_before(self, stamp_ns: int):
        """Clock grid points after the last tick, up to and including `stamp_ns`."""
        if self._clock is None:
            return range(0)
        first = (self._clock_ns // self._tick_ns + 1) * self._tick_ns
        return range(first, stamp_ns + 1, self._tick_ns)

    def flush(self, timeout: float = 5.0) -> List[str]:
        """Wait until subscribers acknowledged what was published; return the topics not."""
        deadline = time.monotonic() + timeout

        def acked(publisher) -> bool:
            left = max(0.0, deadline - time.monotonic())
            return publisher.wait_for_all_acked(Duration(seconds=left))
        return [name for name, p in self._topic_publishers.items() if not acked(p)]

    def _publish_clock(self, stamp_ns: int) -> None:
        if self._clock is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
            self._clock.publish(msg)
            self._clock_ns = stamp_ns


def _sleep_until(due: float, stop: threading.Event) -> bool:
    """Wait until the monotonic time `due` or until `stop` is set; return whether it was."""
    return stop.wait(max(0.0, due - time.monotonic()))


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
    parser.add_argument('--clock-settle', type=float, default=0.0, metavar='S',
                        help='pause S before and after each /clock tick (deterministic '
                             'replays into use_sim_time nodes; e.g. 0.02 with --clock 10)')
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error('--rate must be > 0')
    if args.start_offset < 0 or args.clock < 0 or args.clock_settle < 0:
        parser.error('--start-offset, --clock and --clock-settle must be >= 0')
    return args


def main(args=None):
    """Entry point of softmaint-play."""
    argv = sys.argv if args is None else ['softmaint-play', *args]
    options = parse_args(remove_ros_args(argv)[1:])
    # --ros-args (remapping, log level) reach the node. Ctrl-C / SIGTERM set a flag that
    # playing reads between messages instead of raising inside rclpy (softmaint_core.shutdown).
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node = None
    try:
        with Bag(options.bag) as bag:
            node = BagPlayer(bag, options.topics, options.clock, options.clock_settle)
            if options.wait_for_subscribers and not node.wait_for_subscribers(
                    options.wait_for_subscribers, stop):
                node.get_logger().warning('not every topic has a subscriber; playing anyway')
            print(f'playing {options.bag}: {len(bag.topics)} topics, '
                  f'{(bag.end - bag.start) / 1e9:.1f} s at {options.rate}x', flush=True)
            while not stop.is_set():
                before = node.published
                node.play(bag, options.rate, options.start_offset, options.topics, stop)
                if node.published == before and not stop.is_set():
                    raise BagError(f'nothing to play in {options.bag} from '
                                   f'{options.start_offset} s on (of '
                                   f'{(bag.end - bag.start) / 1e9:.1f} s) on the selected '
                                   'topics whose types are installed')
                if not options.loop:
                    break
        unacknowledged = node.flush()
        if unacknowledged:
            node.get_logger().warning(f'subscribers did not acknowledge everything on '
                                      f'{unacknowledged}: they may have missed messages')
        skipped = sum(node.skipped.values())
        print(f'published {node.published} messages, skipped {skipped} '
              f'({sorted(node.skipped)}){", stopped by a signal" if stop.is_set() else ""}',
              flush=True)
        return 0
    except BagError as err:
        print(f'softmaint-play: {err}', file=sys.stderr)
        return 2
    except ExternalShutdownException:
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
