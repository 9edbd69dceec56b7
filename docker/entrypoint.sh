#!/bin/bash
# Entrypoint of the softmaint robot image: the ROS 2 distro, then the softmaint overlay, then the
# command (default: ros2 launch softmaint bringup.launch.py), which replaces this shell so that it
# receives the container's stop signal itself.
set -e
# shellcheck disable=SC1090
. "/opt/ros/${ROS_DISTRO:?ROS_DISTRO is not set}/setup.bash"
# shellcheck disable=SC1091
. /opt/softmaint/install/setup.bash
exec "$@"
