#!/usr/bin/env bash
# Creates .venv on a plain Debian + Python 3.11 machine (no ROS 2 distro): the ROS 2 kilted wheels,
# the colcon/ament build tools, onnxruntime, torch CPU and the rest, all pinned by constraints.txt.
# Make calls it only when a requirements file changed, so a warm run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

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
# PyPI's torch==2.13.0 is the CUDA build (several GB); PyTorch's own index has the CPU build
# (2.13.0+cpu, which the pin accepts and pip prefers). Where that index cannot be reached
# (a mirror-only machine), torch comes from the configured indexes.
torch_index=()
if "$venv/bin/python" -c 'import urllib.request as r; r.urlopen("'"$TORCH_CPU_INDEX"'/torch/", timeout=5)' \
    2>/dev/null; then
  torch_index=(--extra-index-url "$TORCH_CPU_INDEX")
else
  echo "setup: $TORCH_CPU_INDEX not reachable: torch from the configured indexes" \
       "(PyPI's is the CUDA build, several GB more)"
fi
echo "setup: installing pinned Python packages into $venv (first run takes about a minute)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${torch_index[@]}" \
  -c requirements/constraints.txt \
  -r requirements/onboard.txt -r requirements/build.txt \
  -r requirements/offline.txt -r requirements/test.txt
"$venv/bin/python" tools/fix_ros_cmake_exports.py "$venv"
