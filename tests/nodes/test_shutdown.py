"""A stop signal that arrives while rclpy converts a taken message must end a node cleanly."""
import os
import signal
import time

import pytest
from rclpy.executors import SingleThreadedExecutor
from ros_helpers import spin_until
from sensor_msgs.msg import JointState
from softmaint_core.shutdown import spin_until_stopped, stop_on_signals


@pytest.fixture
def restore_signals():
    """Give SIGINT and SIGTERM their handlers back after the test."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture
def signal_during_take(ros_context, monkeypatch):
    """
    A JointState subscriber whose message conversion sends this process SIGTERM.

    rclpy builds the Python message by calling its field setters, so a SIGTERM sent from the
    `name` setter arrives exactly where a real one does under load: inside take_message.
    """
    import rclpy
    message = JointState(name=['j0'], position=[0.1])     # built before the setter is hooked
    original = JointState.name

    def setter(msg, value):
        os.kill(os.getpid(), signal.SIGTERM)
        original.fset(msg, value)

    monkeypatch.setattr(JointState, 'name', property(original.fget, setter))
    node = rclpy.create_node('shutdown_probe', context=ros_context)
    received = []
    node.create_subscription(JointState, 'joints', received.append, 10)
    publisher = node.create_publisher(JointState, 'joints', 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    assert spin_until(executor, lambda: publisher.get_subscription_count() == 1, 10.0)
    publisher.publish(message)
    yield executor, received
    executor.shutdown()
    node.destroy_node()


def test_an_exception_raising_handler_kills_the_take(signal_during_take, restore_signals):
    """Why the nodes do not let SIGTERM raise KeyboardInterrupt (the old e2e flake)."""
    executor, received = signal_during_take
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with pytest.raises(RuntimeError, match='Unable to convert call argument'):
        spin_until(executor, lambda: received, 10.0)
    assert not received


def test_the_stop_flag_ends_the_loop_after_delivering_the_message(signal_during_take,
                                                                  restore_signals):
    executor, received = signal_during_take
    stop = stop_on_signals()
    spin_until_stopped(executor, stop, until=lambda: False, period=0.05)
    assert stop.is_set() and len(received) == 1 and received[0].name == ['j0']
    # the message was whole; the loop ended on the flag, not by an exception
    assert received[0].position[0] == pytest.approx(0.1)


def test_the_loop_ends_when_its_condition_holds_or_its_context_shuts_down(ros_context,
                                                                          restore_signals):
    stop = stop_on_signals()
    executor = SingleThreadedExecutor(context=ros_context)
    spin_until_stopped(executor, stop, until=lambda: True)
    ros_context.try_shutdown()
    start = time.monotonic()
    spin_until_stopped(executor, stop)          # returns at once: the context is down
    assert time.monotonic() - start < 2.0
    assert not stop.is_set()
    signal.raise_signal(signal.SIGINT)          # Ctrl-C sets the flag and raises nothing
    assert stop.is_set()
