"""
Ending a node's spin loop on SIGINT / SIGTERM without raising inside rclpy.

Python's default SIGINT handler raises KeyboardInterrupt at whatever bytecode runs next. In a
busy node that is often inside rclpy's conversion of a taken message to Python (the message's
field setters are Python code); pybind11 then replaces it with "RuntimeError: Unable to
convert call argument '0' to Python object" and the node dies with a traceback instead of
ending cleanly. rclpy's own handler shuts the context down under a spinning executor, which
then fails in its next wait. A flag that the loop reads between callbacks has neither problem.
"""
import signal
import threading


def stop_on_signals() -> threading.Event:
    """
    Return an event that SIGINT and SIGTERM set (their handlers are replaced).

    Call it after rclpy.init(signal_handler_options=SignalHandlerOptions.NO). SIGINT is set
    explicitly: a child of a non-interactive shell inherits it ignored.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def spin_until_stopped(executor, stop: threading.Event, until=lambda: False,
                       period: float = 0.2) -> None:
    """Spin an rclpy executor until `stop` is set, its context shuts down or `until()` holds."""
    while executor.context.ok() and not stop.is_set() and not until():
        executor.spin_once(timeout_sec=period)
