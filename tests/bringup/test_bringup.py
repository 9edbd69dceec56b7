"""Bringup: the launch file and the runner start the same nodes with the same parameters."""
import ast
from pathlib import Path
import subprocess
import sys

import pytest
from softmaint import bringup

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / 'launch' / 'bringup.launch.py'


def test_default_plan_is_the_onboard_suite():
    nodes = bringup.plan(bringup.resolve({}))
    assert [n.name for n in nodes] == ['softmaint_ingestion', 'softmaint_inference',
                                       'softmaint_agent']
    model = bringup.share_dir() / 'models' / 'student.onnx'
    assert bringup.model_for() == model
    assert nodes[1].parameters['model_path'] == str(model)
    assert nodes[0].parameters['model_metadata'] == str(model.with_suffix('.json'))
    assert all(n.parameters['use_sim_time'] is False for n in nodes)


def test_sim_and_monitor_are_added_and_sim_ends_the_run():
    args = bringup.resolve({'use_sim': 'true', 'monitor': 'true', 'duration': '30',
                            'use_sim_time': 'true', 'scenario': 'leak'})
    nodes = {n.name: n for n in bringup.plan(args)}
    assert set(nodes) == {'softmaint_sim', 'softmaint_ingestion', 'softmaint_inference',
                          'softmaint_agent', 'softmaint_monitor'}
    sim = nodes['softmaint_sim']
    assert sim.ends_run and not nodes['softmaint_agent'].ends_run
    assert sim.parameters == {'use_sim_time': True, 'scenario': 'leak', 'duration': 30.0,
                              'rate_factor': 1.0, 'publish_clock': True}


@pytest.mark.parametrize('given, message', [
    ({'use_sim': 'maybe'}, 'use_sim'),
    ({'use_sim': 'true', 'duration': 'long'}, 'duration'),
])
def test_bad_argument_values_name_the_argument(given, message):
    with pytest.raises(ValueError, match=message):
        bringup.plan(bringup.resolve(given))


def test_unknown_argument_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['modle'\].*'model'"):
        bringup.resolve({'modle': 'x.onnx'})


def test_runner_command_carries_name_namespace_params_file_and_parameters(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('{}\n')
    args = bringup.resolve({'namespace': 'arm_1', 'params_file': str(params)})
    node = bringup.plan(args)[1]
    cmd = bringup.command(node, args)
    assert Path(cmd[0]).name == 'inference'
    namespaced = bringup.params_files(args)[0]
    assert cmd[1:] == ['--ros-args', '-r', '__node:=softmaint_inference', '-r', '__ns:=/arm_1',
                       '--params-file', namespaced, '-p', 'use_sim_time:=false',
                       '-p', f'model_path:={bringup.model_for()}', '--log-level', 'info']


def test_monitor_judges_with_the_agents_parameter_files_and_strings_stay_strings():
    # rcl reads `-p` values as YAML: an empty profile must reach the monitor as '', not null
    args = bringup.resolve({'monitor': 'true', 'profile': 'medical'})
    monitor = next(n for n in bringup.plan(args) if n.name == 'softmaint_monitor')
    overlay = bringup.share_dir() / 'config' / 'profiles' / 'medical.yaml'
    assert monitor.parameters['params_files'] == [args['params_file'], str(overlay)]
    cmd = bringup.command(monitor, args)
    assert f"params_files:={[args['params_file'], str(overlay)]}" in cmd
    assert bringup._ros_value('[a') == '"[a"' and bringup._ros_value('true') == '"true"'


def test_a_profile_runs_its_own_student_if_it_ships_one(tmp_path):
    models = bringup.share_dir() / 'models'
    for profile in bringup.profile_names():
        own = models / 'profiles' / profile / 'student.onnx'
        nodes = bringup.plan(bringup.resolve({'profile': profile}))
        expected = own if own.is_file() else models / 'student.onnx'
        assert nodes[1].parameters['model_path'] == str(expected), profile
        assert nodes[0].parameters['model_metadata'] == str(expected.with_suffix('.json'))
    # space needs its own student (docs/profiles.md §2); an explicit model:= always wins
    assert bringup.model_for('space') == models / 'profiles' / 'space' / 'student.onnx'
    assert bringup.model_for('medical') == models / 'student.onnx'
    given = str(tmp_path / 'mine.onnx')
    nodes = bringup.plan(bringup.resolve({'profile': 'space', 'model': given}))
    assert nodes[1].parameters['model_path'] == given


@pytest.mark.slow
def test_parameters_reach_a_node_in_a_namespace(tmp_path, spawn):
    """A bare node-name key must still configure the node of one robot among several."""
    log = tmp_path / 'arm_1.db'
    params = tmp_path / 'params.yaml'
    params.write_text(f'softmaint_agent:\n  ros__parameters:\n    log_path: {log}\n')
    args = bringup.resolve({'namespace': 'arm_1', 'params_file': str(params)})
    agent = next(n for n in bringup.plan(args) if n.name == 'softmaint_agent')
    cmd = bringup.command(agent, args)
    spawn(['-c', 'import sys; from softmaint.agent_node import main; sys.exit(main())',
           *cmd[1:]], wait_for_line='ready')
    assert log.is_file(), 'the agent in /arm_1 ignored its parameter file'


def test_runner_refuses_a_missing_params_file_before_starting_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'softmaint.bringup', f'params_file:={tmp_path}/none.yaml'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert 'none.yaml not found' in result.stderr
    assert 'started' not in result.stdout


def test_runner_rejects_malformed_arguments():
    result = subprocess.run([sys.executable, '-m', 'softmaint.bringup', 'use_sim=true'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and 'name:=value' in result.stderr


def test_launch_file_declares_the_runner_arguments_and_uses_the_plan():
    """Checked on the source here; on a distro the next test runs the launch file itself."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == 'softmaint.bringup' for alias in node.names}
    assert {'arguments', 'plan'} <= imported
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {'arguments', 'plan', 'DeclareLaunchArgument', 'Node'} <= called


def test_launch_file_starts_the_planned_nodes_on_a_distro():
    launch = pytest.importorskip('launch')
    if not hasattr(launch, 'LaunchContext'):   # the repository's launch/ folder, not ROS 2's
        pytest.skip('the ROS 2 launch system is not installed (no ROS 2 distro)')
    pytest.importorskip('launch_ros')
    import importlib.util
    spec = importlib.util.spec_from_file_location('bringup_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert [a.name for a in description.get_launch_arguments()] == list(bringup.arguments())
    context = launch.LaunchContext()
    started = []
    for entity in description.entities:   # arguments set their defaults, then the nodes
        started += [n for n in entity.visit(context) or [] if hasattr(n, 'node_executable')]
    assert [(n.node_package, n.node_executable) for n in started] == [
        (n.package, n.executable) for n in bringup.plan(bringup.resolve({}))]


def test_unknown_profile_lists_the_shipped_ones():
    args = bringup.resolve({'profile': 'moon_base'})
    with pytest.raises(ValueError, match="profile 'moon_base' is not one of .*'medical'"):
        bringup.params_files(args)
