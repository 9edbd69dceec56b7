"""Helpers for tests that talk to ROS 2 nodes: wait on events with a timeout, never sleep."""
import time


def spin_until(executor, condition, timeout: float) -> bool:
    """Spin `executor` until condition() is true or `timeout` seconds pass; return condition()."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def request_until_answered(executor, send, timeout: float, attempts: int = 3):
    """Send an idempotent request (send() returns its future) until one is answered; return it.

    A service server that has not yet matched the client's response reader drops the response
    after a 100 ms wait (ros2/rmw_fastrtps#390, #467), which a loaded machine reaches on the
    first request after discovery. Only requests that may be repeated go through here.
    """
    for _ in range(attempts):
        future = send()
        if spin_until(executor, future.done, timeout / attempts):
            return future.result()
    raise AssertionError(f'no answer to {attempts} requests in {timeout} s')
