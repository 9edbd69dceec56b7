#!/usr/bin/env bash
# The main job: the simulated degrading soft arm runs a scenario while the onboard suite
# (ingestion -> student -> maintenance agent) watches it; the monitor prints predictions and
# decisions live and ends with a summary and a plot in reports/demo/.
#   tools/demo.sh [PROFILE]      (make demo PROFILE=...)
# A PROFILE other than default runs its own scenario (config/scenarios/PROFILE.yaml) and adds
# its parameter overlay (config/profiles/PROFILE.yaml, e.g. the agent's policy) to the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. tools/env.sh
profile=${1:-default}
scenario=${DEMO_SCENARIO:-$profile}
duration=${DEMO_DURATION:-100}
profile_args=()
if [ "$profile" != default ]; then
  profile_args=(profile:="$profile")
fi
if [ ! -f models/student.onnx ]; then
  echo "demo: models/student.onnx is missing; train it with: softmaint-train reproduce" >&2
  exit 1
fi
# A private DDS domain on this machine only: the demo never talks to other ROS 2 systems.
# 1..101: the IDs whose DDS ports stay below Linux's ephemeral port range (32768+).
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 101) + 1 ))}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
echo "demo: sim robot on scenario '$scenario' for ${duration} s + the onboard suite" \
     "(profile $profile, ROS_DOMAIN_ID=$ROS_DOMAIN_ID); Ctrl-C stops early and still writes" \
     "the summary"
softmaint-bringup use_sim:=true monitor:=true scenario:="$scenario" duration:="$duration" \
  report_dir:=reports/demo "${profile_args[@]}"
