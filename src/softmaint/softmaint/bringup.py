"""
Bringup of the suite: which nodes start with which parameters, and a runner without `ros2 launch`.

`plan()` is the one description of the suite. `launch/bringup.launch.py` turns it into launch_ros
Node actions on a ROS 2 distro; where the launch system is missing (a plain Python machine),

    softmaint-bringup [use_sim:=true] [scenario:=default] [duration:=90] [model:=PATH] ...
    softmaint-bringup use_sim:=true foxglove:=true     # and a Foxglove live view on :8765

starts the same nodes as child processes from the same parameter file, prefixes their output
with the node name like `ros2 launch`, and stops them all on Ctrl-C / SIGTERM, when the sim robot
finishes its scenario, or when any node dies.
"""
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import selectors
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from softmaint_core.profiles import parameter_files, student_of
from softmaint_ros.children import child_env
import yaml

PACKAGE = 'softmaint'
# Seconds the children get to shut down cleanly after SIGINT before they are killed.
SHUTDOWN_GRACE = 10.0


def share_dir() -> Path:
    """Return the installed share directory of softmaint, or the repository top level."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError):
        return Path(__file__).resolve().parents[3]


def model_for(profile: str = '') -> Path:
    """Installed student of `profile`: its own if it ships one, else the default model."""
    return student_of(profile, share_dir() / 'models')


def arguments() -> Dict[str, Tuple[str, str]]:
    """Launch arguments: name -> (default, description). Shared by the launch file and runner."""
    share = share_dir()
    return {
        'namespace': ('', 'namespace of every node (one robot of several on a network)'),
        'params_file': (str(share / 'config' / 'softmaint.yaml'),
                        'parameter YAML keyed by node name'),
        'profile': ('', 'application profile: a parameter overlay in config/profiles '
                    '(e.g. deep_sea, medical, space); empty = none'),
        'model': ('', 'student ONNX file, its metadata JSON beside it; empty = the '
                  "profile's own student (models/profiles/NAME/student.onnx) if it ships one, "
                  'else models/student.onnx'),
        'use_sim_time': ('false', 'follow /clock (bag replay with --clock, or the sim robot)'),
        'use_sim': ('false', 'start the simulated soft arm as the robot'),
        'scenario': ('default', 'sim robot scenario: a name in config/scenarios or a path'),
        'duration': ('0', 'sim robot: stop after this many seconds, 0 = run until stopped'),
        'rate_factor': ('1.0', 'sim robot: simulated seconds per wall-clock second'),
        'monitor': ('false', 'start the monitor that prints predictions and decisions and '
                    'writes a summary with a plot when it stops'),
        'report_dir': ('reports/latest', 'monitor: where the summary and plot go'),
        'foxglove': ('false', 'start the Foxglove live view: a WebSocket server streaming the '
                     'camera, tactile map, predictions, decisions, assistance requests and '
                     'diagnostics (docs/live-view.md)'),
        'foxglove_port': ('8765', 'live view: WebSocket port, 0 = any free port'),
        'log_level': ('info', 'log level of every node'),
    }


@dataclass(frozen=True)
class NodePlan:
    """One node to start: where its executable is, its name, and parameters from arguments."""

    package: str
    executable: str
    name: str
    parameters: Dict[str, object] = field(default_factory=dict)
    # The run ends when this node exits by itself (the sim robot at the end of its scenario).
    ends_run: bool = False


def _flag(value: str, name: str) -> bool:
    if value.lower() in ('true', '1', 'yes'):
        return True
    if value.lower() in ('false', '0', 'no'):
        return False
    raise ValueError(f'{name}:={value!r} must be true or false')


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f'{name}:={value!r} must be a number') from None


def _port(value: str, name: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f'{name}:={value!r} must be a port number from 0 to 65535')
    return int(value)


def resolve(given: Dict[str, str]) -> Dict[str, str]:
    """Fill defaults into `given` launch arguments; raise ValueError on unknown names."""
    known = arguments()
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f'unknown argument(s) {unknown}; known: {sorted(known)}')
    return {name: given.get(name, default) for name, (default, _) in known.items()}


def plan(args: Dict[str, str]) -> List[NodePlan]:
    """Nodes of the suite for resolved launch arguments (see `arguments()`)."""
    sim_time = _flag(args['use_sim_time'], 'use_sim_time')
    model = str(Path(args['model']).expanduser() if args['model'] else model_for(args['profile']))
    metadata = str(Path(model).with_suffix('.json'))
    common = {'use_sim_time': sim_time}
    nodes = []
    if _flag(args['use_sim'], 'use_sim'):
        nodes.append(NodePlan('softmaint_sim', 'sim_robot', 'softmaint_sim', {
            **common, 'scenario': args['scenario'],
            'duration': _number(args['duration'], 'duration'),
            'rate_factor': _number(args['rate_factor'], 'rate_factor'),
            'publish_clock': sim_time}, ends_run=True))
    nodes += [
        NodePlan(PACKAGE, 'ingestion', 'softmaint_ingestion',
                 {**common, 'model_metadata': metadata}),
        NodePlan(PACKAGE, 'inference', 'softmaint_inference', {**common, 'model_path': model}),
        NodePlan(PACKAGE, 'agent', 'softmaint_agent', dict(common)),
    ]
    if _flag(args['monitor'], 'monitor'):
        nodes.append(NodePlan(PACKAGE, 'monitor', 'softmaint_monitor',
                              {**common, 'report_dir': args['report_dir'],
                               # bare node keys: it reads the agent's section by name
                               'params_files': params_files({**args, 'namespace': ''})}))
    if _flag(args['foxglove'], 'foxglove'):
        nodes.append(NodePlan(PACKAGE, 'foxglove_view', 'softmaint_foxglove_view',
                              {**common, 'port': _port(args['foxglove_port'], 'foxglove_port')}))
    return nodes


def profile_names() -> List[str]:
    """Application profiles shipped in config/profiles."""
    return sorted(p.stem for p in overlays_dir().glob('*.yaml'))


def overlays_dir() -> Path:
    """Directory of the profiles' parameter overlays."""
    return share_dir() / 'config' / 'profiles'


def params_files(args: Dict[str, str]) -> List[str]:
    """Parameter files of every node, later ones overriding earlier ones, in the namespace."""
    files = [str(path) for path in
             parameter_files(args['params_file'], args['profile'], overlays_dir())]
    namespace = args['namespace'].strip('/')
    return [namespaced(path, namespace) for path in files] if namespace else files


def namespaced(path: str, namespace: str) -> str:
    """
    Copy of a parameter file whose node keys carry `namespace`; return its path.

    rcl matches a bare key like `softmaint_agent` only to a node without a namespace, so one
    robot of several (`namespace:=arm_1`) would silently run on defaults. Keys that already
    start with '/' (fully qualified or wildcards) are kept.
    """
    import tempfile

    import yaml
    data = yaml.safe_load(Path(path).read_text()) or {}
    rewritten = {key if key.startswith('/') else f'/{namespace}/{key}': value
                 for key, value in data.items()}
    out_dir = Path(tempfile.gettempdir()) / f'softmaint-params-{os.getuid()}'
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f'{namespace.replace("/", "_")}-{Path(path).name}'
    out.write_text(yaml.safe_dump(rewritten, sort_keys=False))
    return str(out)


def executable_path(node: NodePlan) -> str:
    """Path of a node's executable, found like `ros2 run` does (<prefix>/lib/<package>/)."""
    from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    try:
        prefix = Path(get_package_prefix(node.package))
    except PackageNotFoundError:
        raise FileNotFoundError(f'package {node.package} is not installed: run make setup and '
                                'source tools/env.sh (or install/setup.bash)') from None
    path = prefix / 'lib' / node.package / node.executable
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: rebuild the workspace (make setup)')
    return str(path)


def _ros_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and not _reads_back(value):
        return json.dumps(value)    # rcl reads `-p` values as YAML: '' or 'true' stay strings
    return str(value)


def _reads_back(text: str) -> bool:
    """Whether YAML reads `text` as that same string."""
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def command(node: NodePlan, args: Dict[str, str]) -> List[str]:
    """Command line of one node, as `ros2 launch` would build it from the same plan."""
    cmd = [executable_path(node), '--ros-args', '-r', f'__node:={node.name}']
    if args['namespace']:
        cmd += ['-r', f'__ns:=/{args["namespace"].strip("/")}']
    for path in params_files(args):
        cmd += ['--params-file', path]
    for key, value in node.parameters.items():
        cmd += ['-p', f'{key}:={_ros_value(value)}']
    return cmd + ['--log-level', args['log_level']]


class Runner:
    """Child processes of the suite with prefixed output and orderly shutdown."""

    def __init__(self, nodes: List[NodePlan], args: Dict[str, str]):
        self.nodes = nodes
        self.commands = [command(n, args) for n in nodes]   # fails before anything starts
        self.procs: List[subprocess.Popen] = []
        self.selector = selectors.DefaultSelector()
        self.stopping = False

    def start(self) -> None:
        """Start every node; output is line-buffered through a pipe."""
        for node, cmd in zip(self.nodes, self.commands):
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=child_env(), text=True, bufsize=1, start_new_session=True)
            self.procs.append(proc)
            self.selector.register(proc.stdout, selectors.EVENT_READ, node.name)
            print(f'[bringup] started {node.name} (pid {proc.pid})', flush=True)

    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            line = key.fileobj.readline()
            if line:
                print(f'[{key.data}] {line.rstrip()}', flush=True)
            else:
                self.selector.unregister(key.fileobj)

    def run(self) -> int:
        """Relay output until a node exits or stop() is called; return the exit code."""
        code = 0
        while not self.stopping:
            self._pump(0.2)
            finished = [(n, p) for n, p in zip(self.nodes, self.procs) if p.poll() is not None]
            if finished:
                node, proc = finished[0]
                if not (node.ends_run and proc.returncode == 0):
                    print(f'[bringup] {node.name} exited with {proc.returncode}: stopping',
                          flush=True)
                    code = 1
                break
        self.shutdown()
        return code

    def stop(self, *_) -> None:
        """Signal handler: end run() and shut the nodes down."""
        self.stopping = True

    def shutdown(self) -> None:
        """SIGINT every running node, wait for them, kill what is left after the grace time."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while any(p.poll() is None for p in self.procs) and time.monotonic() < deadline:
            self._pump(0.1)
        for node, proc in zip(self.nodes, self.procs):
            if proc.poll() is None:
                print(f'[bringup] {node.name} did not stop in {SHUTDOWN_GRACE} s: killing',
                      flush=True)
                proc.kill()
                proc.wait()
        while self.selector.get_map():
            self._pump(0.1)


def parse_argv(argv: List[str]) -> Dict[str, str]:
    """`name:=value` pairs, as `ros2 launch` takes them."""
    given = {}
    for item in argv:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise ValueError(f'{item!r}: arguments are name:=value')
        given[name] = value
    return given


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of softmaint-bringup."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ('-h', '--help', '--show-args'):
        print(__doc__.strip(), '\n\narguments:')
        for name, (default, text) in arguments().items():
            print(f'  {name}:={default!r}\n      {text}')
        return 0
    try:
        args = resolve(parse_argv(argv))
        runner = Runner(plan(args), args)
    except (ValueError, FileNotFoundError) as err:
        print(f'softmaint-bringup: error: {err}', file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, runner.stop)
    signal.signal(signal.SIGTERM, runner.stop)
    runner.start()
    return runner.run()


if __name__ == '__main__':
    sys.exit(main())
