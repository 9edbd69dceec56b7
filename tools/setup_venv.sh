#!/usr/bin/env bash
# Creates .venv on a plain Debian + Python 3.11 machine (no ROS 2 distro): the ROS 2 kilted wheels,
# the colcon/ament build tools, onnxruntime, torch CPU and the rest, all pinned by constraints.txt.
# Make calls it only when a requirements file changed, so a warm run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
"$python" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need_apt[*]}; install them with: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The installed venv takes about 2 GiB (torch, onnxruntime, MuJoCo): say so before pip fills the disk.
need_mib=${SOFTMAINT_VENV_NEED_MIB:-3072}
free_mib=$(df -Pm "$(dirname "$(realpath -m "$venv")")" | awk 'NR == 2 {print $4}')
if [ ! -e "$venv/.softmaint-installed" ] && [ "$free_mib" -lt "$need_mib" ]; then
  echo "setup: $free_mib MiB free where $venv goes, the venv needs about $need_mib MiB;" \
       "free some disk space (old clones' .venv, /tmp/pytest-of-$(id -un)) and run make again" >&2
  exit 1
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "setup: installing pinned Python packages into $venv (first run takes about a minute)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c requirements/constraints.txt \
  -r requirements/onboard.txt -r requirements/build.txt \
  -r requirements/offline.txt -r requirements/test.txt
"$venv/bin/python" tools/fix_ros_cmake_exports.py "$venv"
