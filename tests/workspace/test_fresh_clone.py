"""The README's set-up works from a fresh clone (committed files only), and is idempotent."""
import os
from pathlib import Path
import shutil
import subprocess

import pytest

REPO = Path(__file__).resolve().parents[2]
# Variables a fresh login shell would not have: the clone must set up its own environment.
LEAKED = ('VIRTUAL_ENV', 'AMENT_PREFIX_PATH', 'COLCON_PREFIX_PATH', 'PYTHONPATH', 'CMAKE_PREFIX_PATH',
          'LD_LIBRARY_PATH', '_ROS_WHEELS_BOOTSTRAP_COMPLETE', 'PYTHONHOME')


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in LEAKED}
    env['PATH'] = os.pathsep.join(p for p in env['PATH'].split(os.pathsep)
                                  if not p.startswith(str(REPO)))
    return env


def _run(args, cwd, timeout=900):
    done = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f'{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    return done.stdout + done.stderr


@pytest.mark.slow
def test_setup_from_fresh_clone_is_complete_and_idempotent(tmp_path):
    if not (REPO / '.git').exists():
        pytest.skip('not a git checkout')
    clone = tmp_path / 'clone'
    try:
        _fresh_setup_and_check(clone, tmp_path)
    finally:
        shutil.rmtree(clone, ignore_errors=True)   # its venv takes 2 GiB


def _fresh_setup_and_check(clone, tmp_path):
    _run(['git', 'clone', '--quiet', str(REPO), str(clone)], cwd=tmp_path)

    first = _run(['make', 'setup'], cwd=clone)
    assert 'setup: installing' in first and 'Summary:' in first

    check = ('. tools/env.sh && python -c "import rclpy, onnxruntime, torch, mujoco, rosbags; '
             'from softmaint_interfaces.msg import SensorWindow; '
             'from softmaint_interfaces.action import Inspect; import softmaint_core.spec"')
    _run(['bash', '-c', check], cwd=clone)

    second = _run(['make', 'setup'], cwd=clone)
    assert 'setup: installing' not in second, 'second set-up reinstalled the venv'
    assert 'Starting >>>' not in second and 'Summary:' not in second, 'second set-up rebuilt'

    tests = _run(['tools/run_tests.sh', 'tests/workspace/test_interfaces.py', '-q'], cwd=clone)
    assert ' passed' in tests and 'failed' not in tests


def test_setup_refuses_before_filling_the_disk(tmp_path):
    env = dict(_clean_env(), VENV=str(tmp_path / 'venv'), SOFTMAINT_VENV_NEED_MIB=str(1 << 40))
    done = subprocess.run(['tools/setup_venv.sh'], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert 'MiB free where' in done.stderr and 'free some disk space' in done.stderr
    assert not (tmp_path / 'venv').exists(), 'it created the venv before refusing'
