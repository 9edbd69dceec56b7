"""
Application profiles: what the onboard suite, the simulator and the offline tool agree on.

A profile names where the arm works. It bundles degradation physics and field sensors (in the
simulator: softmaint_sim.profiles) and the agent's policy (a parameter overlay
config/profiles/NAME.yaml that `softmaint-bringup profile:=NAME` adds after
config/softmaint.yaml). This module holds the part more than one package needs, ROS-free:

* the profile names and which environment quantities each profile's robot senses: a quantity it
  does not sense is published as NaN in EnvironmentReading, and the window assembler reads it
  as the training mean (softmaint_core.window), so the student sees "no information";
* which student a profile runs: its own, models/profiles/NAME/student.onnx, when one was
  trained for it (docs/profiles.md says when that is needed), else the default model;
* merging parameter files the way ROS 2 does (later files override, nested keys become dotted
  names) and checking an overlay: only the suite's node names, only `ros__parameters`, agent
  thresholds and action settings that pass policy.Thresholds and policy.ActionSettings.
"""
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import yaml

from .settings import ActionSettings, Thresholds
from .spec import ENVIRONMENT_FIELDS

# Nodes of the suite, as bringup names them (the keys of a parameter file).
NODE_NAMES = ('softmaint_sim', 'softmaint_ingestion', 'softmaint_inference', 'softmaint_agent',
              'softmaint_monitor', 'softmaint_foxglove_view')
AGENT = 'softmaint_agent'
THRESHOLD_PREFIX = 'thresholds.'
ACTIONS_PREFIX = 'actions.'


class ProfileError(ValueError):
    """An unknown profile or an invalid parameter overlay; the message says what is wrong."""


@dataclass(frozen=True)
class Profile:
    """One application profile: its name, where it works, what its robot senses."""

    name: str
    summary: str
    sensed: Tuple[str, ...] = ENVIRONMENT_FIELDS   # environment quantities the robot measures

    @property
    def unsensed(self) -> Tuple[str, ...]:
        """Environment quantities the robot reports as NaN."""
        return tuple(q for q in ENVIRONMENT_FIELDS if q not in self.sensed)

    @property
    def unsensed_columns(self) -> Tuple[int, ...]:
        """Columns of the unsensed quantities in ENVIRONMENT_FIELDS order."""
        return tuple(ENVIRONMENT_FIELDS.index(q) for q in self.unsensed)


PROFILES = {p.name: p for p in (
    Profile('default', 'laboratory or factory floor: the simulator as trained'),
    Profile('deep_sea', 'subsea manipulation at ~3000 m: 300 bar, cold sea water, turbid and '
            'dark; a CTD-type probe senses temperature and pressure only',
            sensed=('temperature', 'pressure')),
    Profile('medical', 'surgical assistance: autoclave sterilisation between procedures, many '
            'large deformations; no chemical (CO2) sensor',
            sensed=('temperature', 'humidity', 'pressure')),
    Profile('space', 'outside a spacecraft: vacuum, thermal cycling every orbit, radiation, '
            'harsh sunlight; temperature and a vacuum gauge only, no crew nearby',
            sensed=('temperature', 'pressure')),
    Profile('carbon_negative_buildings', 'maintenance in bio-based (timber, hemp-lime) '
            'buildings: humid, CO2-rich air, microbes colonise the skin; chemical sensor '
            'present'),
)}


def student_of(profile_name: str, models: Path) -> Path:
    """Student ONNX file a profile runs, from a models directory (default: models/student.onnx)."""
    own = Path(models) / 'profiles' / profile_name / 'student.onnx'
    return own if profile_name and own.is_file() else Path(models) / 'student.onnx'


def profile(name: str) -> Profile:
    """Return the profile called `name`; raise ProfileError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f'unknown profile {name!r}; known: {sorted(PROFILES)}') from None


def parameter_files(params_file, profile_name: str, overlays: Path) -> List[Path]:
    """
    Parameter files the suite runs with: `params_file`, then the profile's overlay.

    The overlay is `overlays/NAME.yaml`; the default profile ('' or 'default') has none.
    Raises ProfileError for a profile without an overlay (naming the shipped ones) and
    FileNotFoundError for a missing parameter file.
    """
    files = [Path(params_file)]
    if profile_name not in ('', 'default'):
        overlay = Path(overlays) / f'{profile_name}.yaml'
        if not overlay.is_file():
            shipped = sorted(p.stem for p in Path(overlays).glob('*.yaml'))
            raise ProfileError(f'profile {profile_name!r} is not one of {shipped}')
        files.append(overlay)
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f'params_file {path} not found')
    return files


def flatten(mapping: dict, prefix: str = '') -> Dict[str, object]:
    """Nested parameter mapping -> {'a.b': value}, like a ROS 2 parameter file is read."""
    flat = {}
    for key, value in mapping.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def node_parameters(documents: Iterable[Tuple[str, dict]]) -> Dict[str, Dict[str, object]]:
    """
    Merge parameter documents (source name, loaded YAML) in order: {node: {name: value}}.

    Raises ProfileError for a key that is not a node of the suite or a node section without
    exactly `ros__parameters`.
    """
    merged = {name: {} for name in NODE_NAMES}
    for source, document in documents:
        if not isinstance(document, dict):
            raise ProfileError(f'{source}: must be a mapping of node names')
        for node, section in document.items():
            if node not in NODE_NAMES:
                raise ProfileError(f'{source}: {node!r} is not a node of the suite '
                                   f'{list(NODE_NAMES)}')
            if not isinstance(section, dict) or set(section) != {'ros__parameters'} or \
                    not isinstance(section['ros__parameters'], dict):
                raise ProfileError(f'{source}.{node}: must hold exactly a ros__parameters '
                                   'mapping')
            merged[node].update(flatten(section['ros__parameters']))
    return merged


def _group(parameters: Dict[str, object], prefix: str, cls):
    known = {spec.name for spec in fields(cls)}
    values = {name[len(prefix):]: value for name, value in parameters.items()
              if name.startswith(prefix)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ProfileError(f'{AGENT}: unknown parameters {[prefix + u for u in unknown]}; '
                           f'known: {sorted(prefix + k for k in known)}')
    return cls.from_mapping(values)


def agent_thresholds(parameters: Dict[str, object]) -> Thresholds:
    """Return the agent's thresholds from merged parameters (defaults where not set)."""
    return _group(parameters, THRESHOLD_PREFIX, Thresholds)


def agent_actions(parameters: Dict[str, object]) -> ActionSettings:
    """Return the agent's action settings from merged parameters (defaults where not set)."""
    return _group(parameters, ACTIONS_PREFIX, ActionSettings)


def load_parameter_files(paths: Iterable[Path]) -> Dict[str, Dict[str, object]]:
    """Load, merge and check parameter files (base first, overlays after); see node_parameters."""
    documents = []
    for path in map(Path, paths):
        try:
            documents.append((path.name, yaml.safe_load(path.read_text())))
        except (OSError, yaml.YAMLError) as err:
            raise ProfileError(f'{path}: {err}') from err
    merged = node_parameters(documents)
    try:
        agent_thresholds(merged[AGENT])
        agent_actions(merged[AGENT])
    except ProfileError:
        raise
    except ValueError as err:       # ThresholdError too
        raise ProfileError(f'{AGENT}: {err}') from err
    return merged
