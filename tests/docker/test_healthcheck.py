"""
The robot image's HEALTHCHECK, docker/healthcheck.py.

The verdict from statuses and running nodes, and the real script in its own process against a
peer publishing /diagnostics.
"""
import importlib.util
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest
from ros_helpers import spin_until

HEALTHCHECK = Path(__file__).resolve().parents[2] / 'docker' / 'healthcheck.py'
PEER = 'healthcheck_test_peer'
OK, WARN, ERROR, STALE = 0, 1, 2, 3


@pytest.fixture(scope='module')
def healthcheck():
    """Load the script as a module."""
    spec = importlib.util.spec_from_file_location('healthcheck', HEALTHCHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ok_and_warn_are_healthy(healthcheck):
    healthy, why = healthcheck.verdict({'softmaint_ingestion: camera': (OK, 'fine'),
                                        'softmaint_ingestion: tactile': (WARN, '2 rejected'),
                                        'softmaint_inference: model': (OK, 'serving')}, [])
    assert healthy
    assert why == 'healthy: 3 statuses (2 OK, 1 WARN)'


@pytest.mark.parametrize('level, name', [(ERROR, 'ERROR'), (STALE, 'STALE'), (7, 'level 7')])
def test_error_stale_and_unknown_levels_are_unhealthy_and_named(healthcheck, level, name):
    healthy, why = healthcheck.verdict({'softmaint_ingestion: camera': (OK, 'fine'),
                                        'softmaint_inference: model': (level, 'no model')}, [])
    assert not healthy
    assert why == f'unhealthy: softmaint_inference: model: {name} (no model)'


def test_missing_nodes_and_silence_are_unhealthy(healthcheck):
    healthy, why = healthcheck.verdict({}, ['softmaint_agent'])
    assert not healthy
    assert why == ('unhealthy: node softmaint_agent is not running; '
                   'no status of the suite on /diagnostics')


def test_default_nodes_are_the_ones_bringup_starts(healthcheck):
    assert healthcheck.suite_nodes() == ['softmaint_ingestion', 'softmaint_inference',
                                         'softmaint_agent']


def _statuses(levels):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    msg = DiagnosticArray()
    msg.status = [DiagnosticStatus(level=bytes([level]), name=name, message=f'{name} says so')
                  for name, level in levels.items()]
    return msg


def _run(ros_context, spawn, levels, args, timeout=30.0):
    """Publish `levels` on /diagnostics from PEER while the script runs; return (code, output)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    node = Node(PEER, context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    if levels is not None:
        publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(0.2, lambda: publisher.publish(_statuses(levels)))
    try:
        proc = spawn([str(HEALTHCHECK), *args])
        assert spin_until(executor, lambda: proc.poll() is not None, timeout), 'still running'
        return proc.returncode, proc.stdout.read().strip()
    finally:
        executor.shutdown()
        node.destroy_node()


ARGS = ['--nodes', PEER, '--timeout', '10', '--settle', '0.5']


def test_script_is_healthy_when_the_suite_reports_ok(ros_context, spawn):
    # Other drivers' statuses on /diagnostics are not the suite's business.
    code, out = _run(ros_context, spawn, {'softmaint_ingestion: camera': OK,
                                          'softmaint_inference: model': WARN,
                                          'gripper_driver: motor': ERROR}, ARGS)
    assert (code, out) == (0, 'healthy: 2 statuses (1 OK, 1 WARN)')


def test_script_is_unhealthy_on_a_stale_sensor(ros_context, spawn):
    code, out = _run(ros_context, spawn, {'softmaint_ingestion: camera': STALE,
                                          'softmaint_inference: model': OK}, ARGS)
    assert code == 1
    assert out == ('unhealthy: softmaint_ingestion: camera: STALE '
                   '(softmaint_ingestion: camera says so)')


def test_script_is_unhealthy_when_nodes_are_missing_and_silent(ros_context, spawn):
    code, out = _run(ros_context, spawn, None, ['--nodes', 'softmaint_absent', '--timeout', '2'])
    assert code == 1
    assert out == ('unhealthy: node softmaint_absent is not running; '
                   'no status of the suite on /diagnostics')


def _healthcheck_until(predicate, timeout: float):
    """Run the script with its defaults (the real suite's nodes) until predicate(code, out)."""
    deadline, result = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        run = subprocess.run([sys.executable, str(HEALTHCHECK), '--timeout', '10'],
                             capture_output=True, text=True, timeout=60)
        result = (run.returncode, run.stdout.strip())
        if predicate(*result):
            break
    return result


@pytest.mark.slow
def test_script_follows_the_real_suite_from_blind_to_healthy(spawn, monkeypatch, tmp_path):
    # The suite as `softmaint-bringup` starts it (the nodes of the launch file, the default
    # parameters and model), its log under a private HOME. Without a robot its sensors are STALE;
    # with the simulated arm publishing them it is healthy.
    from softmaint.bringup import executable_path, NodePlan
    monkeypatch.setenv('HOME', str(tmp_path))
    suite = spawn(['-m', 'softmaint.bringup'])
    try:
        code, out = _healthcheck_until(lambda c, o: 'not running' not in o, 60)
        assert code == 1, out
        assert 'softmaint_ingestion: camera: STALE (no message received yet)' in out
        sim = executable_path(NodePlan('softmaint_sim', 'sim_robot', 'softmaint_sim'))
        spawn([sim, '--ros-args', '-p', 'scenario:=healthy'])
        code, out = _healthcheck_until(lambda c, o: c == 0, 60)
        assert (code, out.split(':')[0]) == (0, 'healthy'), out
    finally:
        suite.send_signal(signal.SIGINT)   # the runner stops its nodes; do not orphan them
        suite.wait(timeout=30)
