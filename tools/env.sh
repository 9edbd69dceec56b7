# Source me: the project's environment on a machine without a ROS 2 distro (.venv + the
# colcon overlay). On a ROS 2 distro, source /opt/ros/$ROS_DISTRO/setup.bash and
# install/setup.bash instead.
_softmaint_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
if [ ! -f "$_softmaint_root/.venv/bin/activate" ]; then
  echo "env.sh: no $_softmaint_root/.venv yet: run make setup first" >&2
  unset _softmaint_root
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_softmaint_root/.venv/bin/activate"
# The wheels install a full ament prefix into the venv: CMake and ament_index look there.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export PYTHONUNBUFFERED=1
export MUJOCO_GL=${MUJOCO_GL:-egl}
if [ -f "$_softmaint_root/install/local_setup.sh" ]; then
  # colcon's scripts read unset variables: relax `set -u` while sourcing them.
  case $- in *u*) set +u; _softmaint_nounset=1 ;; esac
  # shellcheck disable=SC1091
  COLCON_CURRENT_PREFIX="$_softmaint_root/install" . "$_softmaint_root/install/local_setup.sh"
  [ -n "${_softmaint_nounset:-}" ] && set -u
  unset _softmaint_nounset
  # Without the `ros2` CLI (`ros2 run`), put the packages' executables on PATH.
  for _softmaint_bin in "$_softmaint_root"/install/*/lib/softmaint*; do
    case ":$PATH:" in *":$_softmaint_bin:"*) ;; *) PATH="$_softmaint_bin:$PATH" ;; esac
  done
  unset _softmaint_bin
fi
unset _softmaint_root
