"""Helpers for tests that talk to ROS 2 nodes: wait on events with a timeout, never sleep."""
import time


def spin_until(executor, condition, timeout: float) -> bool:
    """Spin `executor` until condition() is true or `timeout` seconds pass; return condition()."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()
