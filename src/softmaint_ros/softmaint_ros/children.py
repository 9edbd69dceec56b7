"""Environment of the processes the suite's tools start (nodes, players, load generators)."""
import os
from typing import Dict


def child_env() -> Dict[str, str]:
    """
    Return this process's environment for a child: unbuffered output, no bootstrap guard.

    The ROS 2 wheels' bootstrap guard must not leak into children: they re-execute to set up
    their own library path (docs/ros2-on-pip.md).
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.pop('_ROS_WHEELS_BOOTSTRAP_COMPLETE', None)
    return env
