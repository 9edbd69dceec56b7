"""
Every shipped profile is complete and valid: an overlay the nodes take, a scenario that loads.

The overlay is checked statically (node names, thresholds, action settings) and by a real agent
process started with config/softmaint.yaml + the overlay, whose parameter services must report
every overlay value (a parameter the node does not declare would be silently dropped by ROS).
"""
from pathlib import Path

import pytest
from softmaint_core.profiles import (load_parameter_files, node_parameters, ProfileError,
                                     PROFILES)
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'config'
SHIPPED = sorted(p.stem for p in (CONFIG / 'profiles').glob('*.yaml'))
NODE_MODULES = {'softmaint_agent': 'softmaint.agent_node'}


def test_every_profile_is_shipped_with_overlay_and_scenario():
    assert SHIPPED == sorted(set(PROFILES) - {'default'})
    for name in SHIPPED:
        assert (CONFIG / 'scenarios' / f'{name}.yaml').is_file(), name


@pytest.mark.parametrize('name', SHIPPED)
def test_overlay_is_valid_and_scenario_loads(name):
    from softmaint_sim.scenario import load
    merged = load_parameter_files([CONFIG / 'softmaint.yaml',
                                   CONFIG / 'profiles' / f'{name}.yaml'])
    overlay = yaml.safe_load((CONFIG / 'profiles' / f'{name}.yaml').read_text())
    assert set(overlay) <= set(NODE_MODULES), 'add a process check for the new node section'
    assert merged['softmaint_agent']['actions.max_assistance_latency'] > 0
    scenario = load(name)
    assert scenario.profile == name and scenario.name == name


@pytest.mark.parametrize('document, message', [
    ({'softmaint_brain': {'ros__parameters': {}}}, "'softmaint_brain' is not a node"),
    ({'softmaint_agent': {'parameters': {}}}, 'must hold exactly a ros__parameters'),
    ({'softmaint_agent': {'ros__parameters': {'thresholds': {'panic_level': 0.5}}}},
     r"unknown parameters \['thresholds.panic_level'\]"),
    ({'softmaint_agent': {'ros__parameters': {'thresholds': {'critical_urgency': 0.3}}}},
     r'schedule_urgency \(0.6\) must be <= critical_urgency \(0.3\)'),
    ({'softmaint_agent': {'ros__parameters': {'actions': {'shutdown_mode': 'eject'}}}},
     'shutdown_mode must be one of'),
])
def test_bad_overlays_are_refused_with_the_reason(tmp_path, document, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ProfileError, match=message):
        load_parameter_files([CONFIG / 'softmaint.yaml', path])


def test_later_files_override_and_nest_like_ros():
    merged = node_parameters([
        ('base', {'softmaint_agent': {'ros__parameters': {'a': 1, 'thresholds': {'b': 2}}}}),
        ('overlay', {'softmaint_agent': {'ros__parameters': {'thresholds': {'b': 3}}}})])
    assert merged['softmaint_agent'] == {'a': 1, 'thresholds.b': 3}


@pytest.mark.slow
@pytest.mark.parametrize('name', SHIPPED)
def test_agent_process_takes_every_overlay_parameter(name, ros_context, spawn, tmp_path):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import parameter_value_to_python
    from rclpy.parameter_client import AsyncParameterClient
    from ros_helpers import request_until_answered, spin_until
    overlay = CONFIG / 'profiles' / f'{name}.yaml'
    expected = load_parameter_files([overlay])['softmaint_agent']
    spawn(['-m', NODE_MODULES['softmaint_agent'], '--ros-args',
           '--params-file', str(CONFIG / 'softmaint.yaml'), '--params-file', str(overlay),
           '-p', f'log_path:={tmp_path / "log.db"}', '-p', "emergency_stop_service:=''"])
    node = Node('profile_test_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    client = AsyncParameterClient(node, 'softmaint_agent')
    assert spin_until(executor, client.services_are_ready, 30.0), 'agent did not start'
    answer = request_until_answered(executor, lambda: client.get_parameters(list(expected)),
                                    20.0)
    values = [parameter_value_to_python(v) for v in answer.values]
    assert dict(zip(expected, values)) == expected
