"""softmaint-play and softmaint-record against bags written by `rosbags` (a third-party writer)."""
import signal
import subprocess
import sys
import time

import pytest
from ros_helpers import spin_until

from bag import bags

PLAYER = ['-m', 'softmaint_bag.player_node']
RECORDER = ['-m', 'softmaint_bag.recorder_node']


def _subscribe(context, topics):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from softmaint_interfaces.msg import TactileArray
    types = {'/joint_states': JointState, '/tactile': TactileArray, '/clock': Clock,
             '/tactile_replayed': TactileArray}
    node = Node('bag_test_listener', context=context)
    received = {t: [] for t in topics}
    for topic in topics:
        node.create_subscription(types[topic], topic, received[topic].append, 100)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return node, executor, received


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_player_publishes_every_message_in_order_with_clock(tmp_path, storage, ros_context,
                                                            spawn):
    written = bags.write_bag(tmp_path / 'bag', storage)
    node, executor, received = _subscribe(ros_context, ['/joint_states', '/tactile', '/clock'])
    player = spawn([*PLAYER, str(tmp_path / 'bag'), '--rate', '4', '--clock', '50',
                    '--wait-for-subscribers', '20'])
    assert spin_until(executor, lambda: len(received['/tactile']) == len(written), 30.0), \
        {k: len(v) for k, v in received.items()}
    assert player.wait(timeout=20) == 0
    positions = [list(m.position) for m in received['/joint_states']]
    assert positions == [pytest.approx([0.01 * i, -0.02 * i]) for i in range(len(written))]
    assert [m.data[0] for m in received['/tactile']] == list(range(len(written)))
    assert received['/tactile'][5].units == 'N' and received['/tactile'][5].rows == 4
    clock_ns = [c.clock.sec * 10**9 + c.clock.nanosec for c in received['/clock']]
    assert clock_ns == sorted(clock_ns)
    assert bags.START_NS <= clock_ns[0] and clock_ns[-1] <= bags.START_NS + 10**9
    node.destroy_node()


def test_topic_selection_and_start_offset(tmp_path, ros_context, spawn):
    bags.write_bag(tmp_path / 'bag', 'mcap', count=20, period=0.05)
    node, executor, received = _subscribe(ros_context, ['/joint_states', '/tactile'])
    spawn([*PLAYER, str(tmp_path / 'bag'), '--rate', '10', '--topics', '/tactile',
           '--start-offset', '0.5', '--wait-for-subscribers', '20'])
    assert spin_until(executor, lambda: len(received['/tactile']) == 10, 30.0)
    assert [m.data[0] for m in received['/tactile']] == list(range(10, 20))
    assert received['/joint_states'] == []
    node.destroy_node()


def test_ros_arguments_reach_the_players_node(tmp_path, ros_context, spawn):
    """--ros-args are ROS's (a topic remapping here), not options the player refuses."""
    bags.write_bag(tmp_path / 'bag', 'mcap', count=5, period=0.05)
    node, executor, received = _subscribe(ros_context, ['/tactile_replayed'])
    spawn([*PLAYER, str(tmp_path / 'bag'), '--rate', '10', '--topics', '/tactile',
           '--wait-for-subscribers', '20', '--ros-args', '-r', '/tactile:=/tactile_replayed'])
    assert spin_until(executor, lambda: len(received['/tactile_replayed']) == 5, 30.0)
    assert [m.data[0] for m in received['/tactile_replayed']] == list(range(5))
    node.destroy_node()


def test_a_signal_stops_playing_at_once_and_the_player_exits_cleanly(tmp_path, ros_context,
                                                                      spawn):
    bags.write_bag(tmp_path / 'bag', 'mcap', count=200, period=0.05)   # 10 s of bag
    node, executor, received = _subscribe(ros_context, ['/tactile'])
    player = spawn([*PLAYER, str(tmp_path / 'bag'), '--rate', '0.5', '--topics', '/tactile',
                    '--wait-for-subscribers', '20'])
    assert spin_until(executor, lambda: received['/tactile'], 30.0)
    stopped = time.monotonic()
    player.send_signal(signal.SIGINT)
    output, _ = player.communicate(timeout=10)
    assert player.returncode == 0, output
    assert time.monotonic() - stopped < 5.0          # not after the 20 s the bag still holds
    assert 'stopped by a signal' in output and 'Traceback' not in output
    node.destroy_node()


def _run(args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def test_bad_bags_give_clear_errors(tmp_path):
    missing = _run([*PLAYER, str(tmp_path / 'nothing')])
    assert missing.returncode == 2 and 'does not exist' in missing.stderr

    bags.write_bag(tmp_path / 'bag', 'mcap')
    mcap = next((tmp_path / 'bag').glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:len(mcap.read_bytes()) // 2])
    truncated = _run([*PLAYER, str(tmp_path / 'bag'), '--rate', '100'])
    assert truncated.returncode == 2
    assert 'corrupt or truncated' in truncated.stderr or 'cannot open' in truncated.stderr

    bags.write_bag(tmp_path / 'ok', 'sqlite3')
    wrong_topic = _run([*PLAYER, str(tmp_path / 'ok'), '--topics', '/nope'])
    assert wrong_topic.returncode == 2 and "topics ['/nope'] are not in" in wrong_topic.stderr
    bad_rate = _run([*PLAYER, str(tmp_path / 'ok'), '--rate', '0'])
    assert bad_rate.returncode == 2 and '--rate must be > 0' in bad_rate.stderr
    # nothing after the offset: an error, also with --loop (which must not spin on it)
    past_end = _run([*PLAYER, str(tmp_path / 'ok'), '--start-offset', '100', '--loop'])
    assert past_end.returncode == 2 and 'nothing to play' in past_end.stderr


def test_recorder_writes_mcap_that_rosbags_reads(tmp_path, ros_context, spawn):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rosbags.highlevel import AnyReader
    from softmaint_core.bagtypes import typestore
    from softmaint_interfaces.msg import TactileArray

    node = Node('bag_test_talker', context=ros_context)
    publisher = node.create_publisher(TactileArray, '/tactile', 100)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    out = tmp_path / 'recorded'
    recorder = spawn([*RECORDER, '--out', str(out), '--topics', '/tactile', '--duration', '60'],
                     wait_for_line='recording to')
    assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, 30.0)
    for i in range(25):
        publisher.publish(TactileArray(rows=2, cols=1, units='N', data=[float(i), 0.5]))
    from rclpy.duration import Duration
    assert publisher.wait_for_all_acked(Duration(seconds=20))
    recorder.send_signal(subprocess.signal.SIGINT)  # must drain what DDS delivered
    output, _ = recorder.communicate(timeout=30)
    assert "'/tactile': 25" in output, output
    with AnyReader([out], default_typestore=typestore()) as reader:
        assert [c.msgtype for c in reader.connections] == [
            'softmaint_interfaces/msg/TactileArray']
        messages = [reader.deserialize(raw, c.msgtype)
                    for c, _, raw in reader.messages()]
    assert [float(m.data[0]) for m in messages] == [float(i) for i in range(25)]
    node.destroy_node()


def test_recorder_keeps_a_latched_topic_latched_and_names_what_it_never_saw(
        tmp_path, ros_context, spawn):
    """As `ros2 bag record`: the publishers' QoS decides the subscription's and goes in the bag."""
    from rclpy.duration import Duration
    from rclpy.node import Node
    from softmaint_bag.reading import Bag
    from softmaint_interfaces.msg import TactileArray
    from softmaint_ros.qos import LATCHED

    node = Node('bag_test_latched_talker', context=ros_context)
    publisher = node.create_publisher(TactileArray, '/tactile', LATCHED)
    publisher.publish(TactileArray(rows=1, cols=1, units='N', data=[7.0]))  # before recording
    out = tmp_path / 'recorded'
    recorder = spawn([*RECORDER, '--out', str(out), '--topics', 'tactile', '/never_published',
                      '--duration', '60'], wait_for_line='recording /tactile')
    publisher.publish(TactileArray(rows=1, cols=1, units='N', data=[8.0]))
    assert publisher.wait_for_all_acked(Duration(seconds=20))
    recorder.send_signal(subprocess.signal.SIGINT)
    output, _ = recorder.communicate(timeout=30)
    assert "'/tactile': 2" in output, output
    assert "no message recorded on ['/never_published']" in output
    with Bag(out) as bag:
        assert bag.topics['/tactile'].latched
        assert [bag.decode(r).data[0] for r in bag.records()] == [7.0, 8.0]
    node.destroy_node()
