"""Seconds on a node's clock -> builtin_interfaces/Time, shared by the nodes that publish them."""
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.time import Time


def time_msg(seconds: float) -> TimeMsg:
    """
    Return the builtin_interfaces/Time of `seconds`.

    Times before 0 (a window reaching back before the clock started) become 0: the message
    cannot go below.
    """
    return Time(nanoseconds=max(0, round(seconds * 1e9))).to_msg()
