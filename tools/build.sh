#!/usr/bin/env bash
# colcon build of src/ against the venv's ROS 2 wheels (Make calls it only when src/ changed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. tools/env.sh
colcon --log-base log build --base-paths src --symlink-install \
  --event-handlers console_cohesion- summary+ status- \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python"
