"""run_node releases the node, the executor and the context whatever ends the run."""
import signal

import pytest
import rclpy
from rclpy.node import Node
from softmaint_ros.node_main import run_node


@pytest.fixture(autouse=True)
def restore_signals():
    """run_node replaces the SIGINT and SIGTERM handlers; give them back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class Probe(Node):
    """A node that remembers whether it was destroyed."""

    destroyed = []

    def __init__(self):
        super().__init__('run_node_probe')

    def destroy_node(self):
        Probe.destroyed.append(self.get_name())
        return super().destroy_node()


def test_a_failing_finish_still_destroys_the_node_and_shuts_rclpy_down():
    Probe.destroyed.clear()

    def finish(node):
        raise OSError('report directory is read-only')

    with pytest.raises(OSError, match='read-only'):
        run_node(Probe, 'probe', args=[], until=lambda node: True, finish=finish)
    assert Probe.destroyed == ['run_node_probe']
    assert not rclpy.ok()


def test_a_fatal_constructor_error_returns_the_fatal_exit_and_shuts_rclpy_down():
    def broken():
        raise ValueError('parameter x: out of range')

    assert run_node(broken, 'probe', args=[], fatal=(ValueError,), fatal_exit=3) == 3
    assert not rclpy.ok()


def test_finish_runs_once_after_the_spin_and_the_run_returns_zero():
    Probe.destroyed.clear()
    finished = []
    assert run_node(Probe, 'probe', args=[], until=lambda node: True,
                    finish=lambda node: finished.append(node.get_name())) == 0
    assert finished == ['run_node_probe'] and Probe.destroyed == ['run_node_probe']
