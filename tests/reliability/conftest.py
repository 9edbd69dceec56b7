"""Node processes for the reliability tests, their output drained by a thread."""
import pytest


@pytest.fixture
def start_child():
    """
    Start a child process; every one still running is stopped after the test.

    A thread reads its output, so a node that logs fast (the agent at hundreds of decisions a
    second) never blocks on a full pipe, and the test can wait for a line (Child.wait_for).
    """
    from softmaint_bench.child import Child, child_env
    children = []

    def start(name, cmd):
        child = Child(name, cmd, child_env(None))
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop(10.0)
