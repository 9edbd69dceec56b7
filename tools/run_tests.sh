#!/usr/bin/env bash
# Runs every test: each package's test/ and the repository's tests/, in one pytest run.
# Each run gets its own ROS_DOMAIN_ID and localhost-only discovery, so parallel runs and other
# ROS 2 systems on the network do not see each other.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. tools/env.sh
# 1..101: the IDs whose DDS ports stay below Linux's ephemeral port range (32768+).
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 101) + 1 ))}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOCALHOST_ONLY=  # superseded by the discovery range; an old 1 would warn
echo "tests: ROS_DOMAIN_ID=$ROS_DOMAIN_ID"
if [ $# -eq 0 ]; then
  # the whole suite: first the packages' dependency contracts (.importlinter)
  lint-imports --no-cache || exit 1
  set -- src tests
fi
python -m pytest "$@"
