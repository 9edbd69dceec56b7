"""
Scenario files of the live sim robot: a YAML timeline of damage, environment and sensor faults.

Example (times in simulated seconds)::

    name: example
    profile: default         # application profile (softmaint_sim.profiles): its physics, scene,
                             # sensors and environment ranges
    domain: field            # sim | field: which arm (material, geometry, scene) is simulated
    seed: 7                  # sensor noise and fault draws
    wear_acceleration: 1000  # degradation cycles per motion cycle (months in minutes)
    motion: {frequency: 0.5, amplitude: [150.0, 83.0]}  # [Hz], peak chamber pressures [kPa]
    environment: {temperature: 24.0, humidity: 0.45, co2: 600.0, pressure: 101.3,
                  drift: {temperature: 0.02}}           # drift per second
    initial: {stiffness: 0.97, cycles: 0}
    events:
      - {at: 30.0, damage: crack_tear, severity: 0.15, location: 0.5}
      - {at: 90.0, damage: puncture_leak, severity: 0.25, side: 0}
      - {at: 60.0, environment: {temperature: 34.0, humidity: 0.8}}
      - {at: 45.0, sensor_fault: dropout, modality: camera, duration: 5.0}
      - {at: 50.0, sensor_fault: dead_taxels, taxels: [2, 5]}
      - {at: 70.0, sensor_fault: bias, modality: environment, quantity: humidity, value: 0.2}

Sensor faults (duration: seconds, default forever): dropout and frozen (any modality), bias
(tactile [N], proprio [rad], environment: one quantity in its unit), dead_taxels (a list,
default all), saturation (value = new taxel range [N]), lighting (value = camera gain).

The loader is strict: unknown keys, wrong types and out-of-range values raise ScenarioError
naming the field and the allowed values.
"""
from dataclasses import dataclass, field
import math
import os
from pathlib import Path
from typing import List, Optional, Tuple

from softmaint_core.profiles import PROFILES
from softmaint_core.spec import MODALITIES
from softmaint_core.taxonomy import DAMAGE_TYPES
import yaml

from .arm import FIELD_TAXELS, SIM_GEOMETRY
from .profiles import sim_profile

DOMAINS = ('sim', 'field')
DEFAULT_AMPLITUDE = (150.0, 83.0)     # peak chamber pressures of the motion cycle [kPa]
MAX_PRESSURE = SIM_GEOMETRY.pressure_max
SENSOR_FAULTS = ('dropout', 'frozen', 'bias', 'dead_taxels', 'saturation', 'lighting')
FAULT_MODALITIES = MODALITIES         # every field sensor can fail
ENV_KEYS = {'temperature': (-20.0, 80.0), 'humidity': (0.0, 1.0), 'co2': (0.0, 10000.0),
            'pressure': (50.0, 120.0)}


def environment_ranges(profile: str) -> dict:
    """Return the allowed range of each environment quantity in a scenario of `profile`."""
    prof = sim_profile(profile)
    return {**ENV_KEYS, **(prof.scenario_ranges if prof else {})}


class ScenarioError(ValueError):
    """An invalid scenario file; the message names the field and what is allowed."""


@dataclass
class Event:
    """One timeline entry."""

    at: float
    damage: Optional[str] = None
    severity: float = 0.2
    location: float = 0.5
    side: int = 0
    environment: dict = field(default_factory=dict)
    sensor_fault: Optional[str] = None
    modality: str = 'tactile'
    duration: float = float('inf')
    value: float = 0.0
    taxels: Tuple[int, ...] = ()     # dead taxels (empty = all)
    quantity: str = ''               # environment quantity a bias offsets


@dataclass
class Scenario:
    """A validated scenario."""

    name: str
    profile: str = 'default'
    domain: str = 'field'
    seed: int = 0
    wear_acceleration: float = 1.0
    frequency: float = 0.5
    amplitude: Tuple[float, float] = DEFAULT_AMPLITUDE   # peak pressures [kPa]
    environment: dict = field(default_factory=lambda: {
        'temperature': 22.0, 'humidity': 0.45, 'co2': 450.0, 'pressure': 101.3})
    drift: dict = field(default_factory=dict)
    stiffness: float = 1.0
    cycles: float = 0.0
    events: List[Event] = field(default_factory=list)
    description: str = ''


def _err(where: str, message: str) -> ScenarioError:
    return ScenarioError(f'{where}: {message}')


def _keys(data, allowed, where):
    if not isinstance(data, dict):
        raise _err(where, f'must be a mapping, got {type(data).__name__}')
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _err(f'{where}.{unknown[0]}', f'unknown field; allowed: {sorted(allowed)}')


def _number(data, key, where, low, high, default=None, integer=False):
    if key not in data:
        if default is None:
            raise _err(f'{where}.{key}', f'is required: a number in [{low}, {high}]')
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(f'{where}.{key}', f'must be a number in [{low}, {high}], got {value!r}')
    if not low <= value <= high:
        raise _err(f'{where}.{key}', f'must be in [{low}, {high}], got {value!r}')
    if integer and int(value) != value:
        raise _err(f'{where}.{key}', f'must be an integer in [{low}, {high}], got {value!r}')
    return int(value) if integer else float(value)


def _choice(data, key, where, allowed, default=None):
    if key not in data:
        if default is None:
            raise _err(f'{where}.{key}', f'is required; allowed: {list(allowed)}')
        return default
    value = data[key]
    if value not in allowed:
        raise _err(f'{where}.{key}', f'{value!r} is not allowed; allowed: {list(allowed)}')
    return value


def _environment(data, where, require_all: bool, ranges=ENV_KEYS) -> dict:
    _keys(data, list(ENV_KEYS) + (['drift'] if require_all else []), where)
    out = {}
    for key, (low, high) in ranges.items():
        if key in data or require_all:
            out[key] = _number(data, key, where, low, high,
                               default=Scenario('x').environment[key] if require_all else None)
    return out


# Keys an event may have besides `at`, per kind; a key of another kind is an error.
EVENT_KEYS = {
    'damage': ('damage', 'severity', 'location', 'side'),
    'environment': ('environment',),
    'sensor_fault': ('sensor_fault', 'modality', 'duration', 'value', 'taxels', 'quantity'),
}
# Modalities each sensor fault can hit (the first is the default).
FAULT_TARGETS = {
    'dropout': FAULT_MODALITIES, 'frozen': FAULT_MODALITIES,
    'bias': ('tactile', 'proprio', 'environment'),
    'dead_taxels': ('tactile',), 'saturation': ('tactile',), 'lighting': ('camera',),
}
# Allowed `value` of each sensor fault: (low, high, default, meaning).
FAULT_VALUES = {
    'dropout': None, 'frozen': None, 'dead_taxels': None,
    'bias': (-1e4, 1e4, 0.0, 'offset in the unit of the reading'),
    'saturation': (0.01, 100.0, 1.0, 'new taxel range_max [N]'),
    'lighting': (0.05, 10.0, 0.5, 'camera brightness gain'),
}


def _event(data, where, ranges=ENV_KEYS) -> Event:
    if not isinstance(data, dict):
        raise _err(where, f'must be a mapping, got {type(data).__name__}')
    kinds = [k for k in EVENT_KEYS if k in data]
    if len(kinds) != 1:
        raise _err(where, f'needs exactly one of {list(EVENT_KEYS)}; got {kinds or "none"}')
    kind = kinds[0]
    _keys(data, ('at',) + EVENT_KEYS[kind], where)
    event = Event(at=_number(data, 'at', where, 0.0, 1e7))
    if kind == 'damage':
        event.damage = _choice(data, 'damage', where, DAMAGE_TYPES[1:])
        event.severity = _number(data, 'severity', where, 0.0, 1.0, default=0.2)
        event.location = _number(data, 'location', where, 0.0, 1.0, default=0.5)
        event.side = _number(data, 'side', where, 0, 1, default=0, integer=True)
    elif kind == 'environment':
        event.environment = _environment(data['environment'], f'{where}.environment', False,
                                         ranges)
        if not event.environment:
            raise _err(f'{where}.environment', f'must set at least one of {list(ENV_KEYS)}')
    else:
        _sensor_fault(data, where, event)
    return event


def _sensor_fault(data, where, event: Event) -> None:
    fault = event.sensor_fault = _choice(data, 'sensor_fault', where, SENSOR_FAULTS)
    targets = FAULT_TARGETS[fault]
    event.modality = _choice(data, 'modality', where, targets, default=targets[0])
    event.duration = _number(data, 'duration', where, 0.0, 1e7, default=float('inf'))
    values = FAULT_VALUES[fault]
    if values is None and 'value' in data:
        raise _err(f'{where}.value', f'a {fault} fault takes no value; allowed only for '
                   f'{sorted(k for k, v in FAULT_VALUES.items() if v)}')
    if values is not None:
        low, high, default, meaning = values
        try:
            event.value = _number(data, 'value', where, low, high, default=default)
        except ScenarioError as err:
            raise ScenarioError(f'{err} ({meaning})') from None
    if 'taxels' in data and fault != 'dead_taxels':
        raise _err(f'{where}.taxels', 'allowed only for a dead_taxels fault')
    if 'taxels' in data:
        taxels = data['taxels']
        if not isinstance(taxels, list) or not taxels or not all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < FIELD_TAXELS
                for t in taxels):
            raise _err(f'{where}.taxels', f'must be a non-empty list of taxel indices '
                       f'0..{FIELD_TAXELS - 1}, got {taxels!r}')
        event.taxels = tuple(taxels)
    if 'quantity' in data and not (fault == 'bias' and event.modality == 'environment'):
        raise _err(f'{where}.quantity', 'allowed only for a bias fault on the environment')
    if fault == 'bias' and event.modality == 'environment':
        event.quantity = _choice(data, 'quantity', where, tuple(ENV_KEYS),
                                 default='temperature')


def describe(event: Event) -> str:
    """One line saying what the event does (for logs)."""
    if event.damage:
        return (f'damage {event.damage} starts: severity {event.severity:.2f} at '
                f'{event.location:.0%} of the arm, side {event.side}')
    if event.environment:
        return 'environment changes: ' + ', '.join(
            f'{k} {v:g}' for k, v in event.environment.items())
    target = (f'{event.modality} {event.quantity}' if event.quantity else event.modality)
    text = f'sensor fault {event.sensor_fault} on {target}'
    if FAULT_VALUES[event.sensor_fault]:
        text += f' (value {event.value:g})'
    if event.taxels:
        text += f' (taxels {list(event.taxels)})'
    if math.isfinite(event.duration):
        text += f' for {event.duration:g} s'
    return text


def parse(data, source: str = 'scenario') -> Scenario:
    """Validate a loaded YAML mapping into a Scenario."""
    _keys(data, ('name', 'description', 'profile', 'domain', 'seed', 'wear_acceleration',
                 'motion', 'environment', 'initial', 'events'), source)
    if not isinstance(data.get('name'), str) or not data['name']:
        raise _err(f'{source}.name', 'is required and must be a non-empty string')
    sc = Scenario(name=data['name'], description=str(data.get('description', '')))
    sc.profile = _choice(data, 'profile', source, tuple(PROFILES), default='default')
    ranges = environment_ranges(sc.profile)
    sc.domain = _choice(data, 'domain', source, DOMAINS, default='field')
    sc.seed = _number(data, 'seed', source, 0, 2 ** 31 - 1, default=0, integer=True)
    sc.wear_acceleration = _number(data, 'wear_acceleration', source, 0.0, 1e6, default=1.0)
    motion = data.get('motion', {})
    _keys(motion, ('frequency', 'amplitude'), f'{source}.motion')
    sc.frequency = _number(motion, 'frequency', f'{source}.motion', 0.05, 3.0, default=0.5)
    amplitude = motion.get('amplitude', list(DEFAULT_AMPLITUDE))
    if (not isinstance(amplitude, list) or len(amplitude) != 2 or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= MAX_PRESSURE
            for a in amplitude)):
        raise _err(f'{source}.motion.amplitude',
                   f'must be two peak chamber pressures in [0, {MAX_PRESSURE:g}] kPa, '
                   f'got {amplitude!r}')
    sc.amplitude = (float(amplitude[0]), float(amplitude[1]))
    env = data.get('environment', {})
    sc.environment = _environment(env, f'{source}.environment', True, ranges)
    drift = env.get('drift', {}) if isinstance(env, dict) else {}
    _keys(drift, list(ENV_KEYS), f'{source}.environment.drift')
    sc.drift = {k: _number(drift, k, f'{source}.environment.drift', -100.0, 100.0)
                for k in drift}
    initial = data.get('initial', {})
    _keys(initial, ('stiffness', 'cycles'), f'{source}.initial')
    sc.stiffness = _number(initial, 'stiffness', f'{source}.initial', 0.45, 1.0, default=1.0)
    sc.cycles = _number(initial, 'cycles', f'{source}.initial', 0.0, 1e9, default=0.0)
    events = data.get('events', [])
    if not isinstance(events, list):
        raise _err(f'{source}.events', 'must be a list of events')
    sc.events = sorted((_event(e, f'{source}.events[{i}]', ranges)
                        for i, e in enumerate(events)), key=lambda e: e.at)
    return sc


def scenario_dirs() -> List[Path]:
    """
    Return the directories searched for scenario names, first match wins.

    $SOFTMAINT_SCENARIOS, then config/scenarios of the working directory's or this source
    file's repository, then the installed share/softmaint/config/scenarios.
    """
    dirs = [Path(p) for p in os.environ.get('SOFTMAINT_SCENARIOS', '').split(os.pathsep) if p]
    for start in (Path.cwd(), Path(os.path.realpath(__file__)).parent):
        for parent in (start, *start.parents):
            candidate = parent / 'config' / 'scenarios'
            if candidate.is_dir():
                dirs.append(candidate)
                break
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(Path(get_package_share_directory('softmaint')) / 'config' / 'scenarios')
    except (ImportError, LookupError):
        pass   # not installed as a ROS package: the repository's config is enough
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def resolve(name_or_path: str) -> Path:
    """Return the scenario file of a path or a name (default -> config/scenarios/default.yaml)."""
    path = Path(name_or_path)
    if path.suffix in ('.yaml', '.yml') or path.is_file():
        if not path.is_file():
            raise ScenarioError(f'scenario file {path} not found')
        return path
    for directory in scenario_dirs():
        candidate = directory / f'{name_or_path}.yaml'
        if candidate.is_file():
            return candidate
    names = sorted({p.stem for d in scenario_dirs() for p in d.glob('*.yaml')})
    raise ScenarioError(f'scenario {name_or_path!r} not found; available: {names} '
                        '(or give a path to a .yaml file, or set SOFTMAINT_SCENARIOS)')


def load(name_or_path: str) -> Scenario:
    """Load and validate a scenario by name or path."""
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ScenarioError(f'{path}: not valid YAML: {err}') from err
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(f'{path}: cannot read the scenario: {err}') from err
    return parse(data, path.name)
