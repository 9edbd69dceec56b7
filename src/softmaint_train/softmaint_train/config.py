"""
Training configuration: typed dataclasses, loaded from YAML with errors naming bad fields.

A config file is a nested mapping whose keys are exactly the dataclass fields below; unknown
keys, wrong types and out-of-range values raise ConfigError with the dotted path of the field
(e.g. ``distill.alpha: must be in [0, 1], got 1.5``). Every checkpoint, exported model and
report carries the full config it was made with (``asdict``).
"""
from dataclasses import asdict, dataclass, field, fields, is_dataclass
import difflib
import math
from pathlib import Path
import re
import typing
from typing import Optional, Tuple

import yaml


class ConfigError(ValueError):
    """A config file or value that is malformed; the message names the field."""


@dataclass
class ModelConfig:
    """Size of one multi-modal encoder (teacher or one student ensemble member)."""

    d_model: int = 32                       # token width
    heads: int = 4                          # attention heads
    layers: int = 2                         # fusion transformer layers
    cnn_channels: Tuple[int, ...] = (16, 32, 32)   # one stride-2 conv per entry
    stem_patch: int = 0                     # > 0: first conv is a patch embedding of this size
    # The defaults below are those of models made before these switches existed, so their
    # checkpoints still load; config/train/default.yaml sets today's choices.
    cnn_pool: str = 'mean'                  # 'flatten' (keeps where things are) or 'mean'
    frame_norm: bool = False                # standardise each camera frame (lighting)
    vector_encoder: str = 'step_mlp'        # 'step_mlp' (one step) or 'temporal_conv'
    urgency_head: str = 'sigmoid'           # 'log_rul' (censored log-RUL) or 'sigmoid'
    dropout: float = 0.1
    embedding: int = 32                     # per-modality feature vector size


@dataclass
class DataConfig:
    """Where the data is and how it is split (the split is fixed by split_seed, not seed)."""

    root: str = 'data/sim-v1'
    split_seed: int = 0
    teacher_val: float = 0.1                # simulation episodes held out from the teacher
    field_train: float = 0.6                # field-domain episodes: train / calibration / test
    field_cal: float = 0.2
    # '' = calibrate on field_cal alone; else also on every field-domain window of this
    # separately generated dataset (same generator and physics): the miss-rate threshold is
    # the k-th smallest P(damage) of the damaged calibration windows, so their number sets how
    # steady it is (field_cal alone holds ~220, and its smallest one set the threshold)
    calibration_root: str = ''
    label_fraction: float = 1.0             # of field-train episodes whose labels are used
    max_windows: int = 0                    # 0 = all; else subsample episodes (quick runs)
    lighting_shift: float = 0.6             # brightness factor of the lighting-shift test
    # 'pooled': one input normalisation for every window; 'per_domain': teacher and student
    # read each domain with its own, the field's from unlabelled windows (data.DomainStats)
    normalisation: str = 'pooled'


@dataclass
class TeacherConfig:
    """Teacher training (teacher view of simulation episodes)."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(
        d_model=48, cnn_channels=(16, 32, 32), stem_patch=4))
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    privileged_weight: float = 0.5          # auxiliary regression of privileged physics state
    # As in ModelConfig, the next two defaults are those of models made before the switches
    # existed (the committed default student); config/train/default.yaml sets today's choices.
    privileged_target: str = 'raw'          # 'raw' or 'signed_log' (data.privileged_targets)
    urgency_loss: str = 'mse'               # 'mse' on urgency or 'log_rul' (censored log-RUL)
    urgency_weight: float = 1.0
    unimodal_weight: float = 0.0            # per-modality auxiliary classifiers (0 = none)


@dataclass
class StudentConfig:
    """Student training (field view)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    members: int = 3                        # deep-ensemble members in one graph (K)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    urgency_loss: str = 'mse'               # as TeacherConfig.urgency_loss
    urgency_weight: float = 1.0
    unimodal_weight: float = 0.0            # per-modality auxiliary classifiers (0 = none)
    min_labelled_steps: int = 300           # scratch / few-label runs: at least this many steps


@dataclass
class MixConfig:
    """Convex-combination augmentation ('superposition sampling' of the source design)."""

    enabled: bool = False
    beta: float = 0.4                       # lambda ~ Beta(beta, beta)
    noise: float = 0.05                     # std of added Gaussian noise (normalised units)
    probability: float = 0.5                # fraction of batches that are mixed


@dataclass
class DistillConfig:
    """Which distillation terms are on, with weights and schedules (each one an ablation)."""

    use_teacher: bool = True                # False = student from scratch on the labels
    kd: bool = True                         # temperature-scaled KL on logits
    temperature: float = 4.0
    alpha_start: float = 0.5                # weight of KD vs supervised at the start ...
    alpha_end: float = 0.8                  # ... and at the end (linear ramp)
    urgency_kd_weight: float = 1.0
    # 'censored': the student's urgency loss on the teacher's urgency (zero beyond the horizon);
    # 'log_rul': squared error on the teacher's log RUL, which ranks healthy windows too
    urgency_kd: str = 'censored'
    presence_weight: float = 0.0            # KD of P(some damage) alone (losses.presence_kd)
    feature: str = 'cosine'                 # 'cosine', 'contrastive' or 'none'
    feature_weight: float = 1.0
    contrastive_tau: float = 0.1
    relational_weight: float = 0.5          # RKD distance term
    angle_weight: float = 0.0               # RKD angle term
    fidelity_weight: float = 0.0            # angle-encoded product-state fidelity
    fidelity_reduction: str = 'neg_log'     # 'neg_log' (-log F / n) or 'one_minus' (1 - F)
    alignment_schedule: str = 'sigmoid'     # 'sigmoid' or 'constant' weight of alignment terms
    sigmoid_steepness: float = 10.0
    modality_dropout: float = 0.3           # per-modality drop probability in training
    adversarial_weight: float = 0.1         # gradient reversal against lighting
    reconstruction_weight: float = 1.0
    mix: MixConfig = field(default_factory=MixConfig)


@dataclass
class CalibrationConfig:
    """Post-hoc calibration on the held-out field calibration split."""

    conformal_alpha: float = 0.1
    conformal_sets: str = 'marginal'       # or 'class_conditional' (Mondrian: per class)
    # > 0: at most this share of damaged windows left at a {none} damage set (miss-rate
    # control, softmaint_core.calibration.conformal_floor); 0 = off
    damage_miss_alpha: float = 0.0
    # > 0: at most this share of in-domain field windows read as an unreadable camera (input
    # spec min_snr, calibrate.camera_min_snr, from the unlabelled field train + calibration
    # windows); 0 = every frame is read
    camera_snr_alpha: float = 0.0


@dataclass
class ExportConfig:
    """ONNX export of the student."""

    out: str = 'models/student.onnx'
    model_id: str = 'student-field-v1'
    opset: int = 17


@dataclass
class TrainConfig:
    """Everything one reproduce run needs."""

    name: str = 'default'
    seed: int = 0
    threads: int = 2
    runs_dir: str = 'runs'
    checkpoint_every: int = 100             # steps between resumable training states (0: end)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


_CHOICES = {
    'distill.feature': ('cosine', 'contrastive', 'none'),
    'distill.urgency_kd': ('censored', 'log_rul'),
    'distill.fidelity_reduction': ('neg_log', 'one_minus'),
    'distill.alignment_schedule': ('sigmoid', 'constant'),
    'teacher.model.cnn_pool': ('flatten', 'mean'),
    'student.model.cnn_pool': ('flatten', 'mean'),
    'teacher.model.vector_encoder': ('step_mlp', 'temporal_conv'),
    'student.model.vector_encoder': ('step_mlp', 'temporal_conv'),
    'teacher.model.urgency_head': ('log_rul', 'sigmoid'),
    'student.model.urgency_head': ('log_rul', 'sigmoid'),
    'teacher.privileged_target': ('raw', 'signed_log'),
    'teacher.urgency_loss': ('mse', 'log_rul'),
    'student.urgency_loss': ('mse', 'log_rul'),
    'calibration.conformal_sets': ('marginal', 'class_conditional'),
    'data.normalisation': ('pooled', 'per_domain'),
}
_UNIT = ('data.teacher_val', 'data.field_train', 'data.field_cal', 'distill.alpha_start',
         'distill.alpha_end', 'distill.modality_dropout', 'student.model.dropout',
         'teacher.model.dropout', 'distill.mix.probability', 'calibration.conformal_alpha',
         'calibration.damage_miss_alpha', 'calibration.camera_snr_alpha')
_POSITIVE = ('d_model', 'heads', 'layers', 'epochs', 'batch_size', 'members', 'embedding', 'lr',
             'temperature', 'contrastive_tau', 'beta', 'threads')


ONNX_OPSETS = (7, 20)     # what torch's TorchScript exporter (dynamo=False, export.py) writes
_EXPONENT = re.compile(r'[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+')


def _coerce(value, hint, path):
    origin = typing.get_origin(hint)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f'{path.rstrip(".")}: expected a mapping, '
                              f'got {type(value).__name__}')
        return _build(hint, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{path}: expected a list, got {value!r}')
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(v, inner, f'{path}[{i}]') for i, v in enumerate(value))
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _coerce(value, typing.get_args(hint)[0], path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{path}: expected true/false, got {value!r}')
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{path}: expected an integer, got {value!r}')
        return value
    if hint is float:
        if isinstance(value, str) and _EXPONENT.fullmatch(value):
            value = float(value)   # YAML 1.1 reads 1e-3 (no dot, no sign) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{path}: expected a number, got {value!r}')
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f'{path}: expected a string, got {value!r}')
        return value
    raise ConfigError(f'{path}: unsupported type {hint}')


def _build(cls, data: dict, prefix: str = ''):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f' (did you mean {close[0]!r}?)' if close else ''
            raise ConfigError(f'{prefix}{key}: unknown field{hint}; known: {", ".join(names)}')
    kwargs = {k: _coerce(v, hints[k], f'{prefix}{k}.' if is_dataclass(hints[k])
                         else f'{prefix}{k}') for k, v in data.items()}
    return cls(**kwargs)


def _check(cfg: 'TrainConfig') -> None:
    flat = flatten_config(asdict(cfg))
    for path, choices in _CHOICES.items():
        if flat[path] not in choices:
            raise ConfigError(f'{path}: must be one of {choices}, got {flat[path]!r}')
    for path in _UNIT:
        if not 0.0 <= flat[path] <= 1.0:
            raise ConfigError(f'{path}: must be in [0, 1], got {flat[path]}')
    for path, value in flat.items():
        if path.rsplit('.', 1)[-1] in _POSITIVE and not value > 0:
            raise ConfigError(f'{path}: must be > 0, got {value}')
        # Every number of the config is a count, rate, weight or fraction: NaN, inf or a
        # negative one would only fail deep inside training, or train on nothing.
        if _is_number(value) and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f'{path}: must be a finite number >= 0, got {value}')
    low, high = ONNX_OPSETS
    if not low <= cfg.export.opset <= high:
        raise ConfigError(f'export.opset: the exporter writes opsets {low}-{high}, got '
                          f'{cfg.export.opset}')
    if cfg.data.teacher_val >= 1.0:
        raise ConfigError('data.teacher_val: must leave teacher training episodes (< 1)')
    if cfg.checkpoint_every < 0:
        raise ConfigError(f'checkpoint_every: must be >= 0, got {cfg.checkpoint_every}')
    if not 0.0 < cfg.data.label_fraction <= 1.0:
        raise ConfigError(f'data.label_fraction: must be in (0, 1], got {cfg.data.label_fraction}')
    if cfg.data.field_train + cfg.data.field_cal >= 1.0:
        raise ConfigError('data.field_train + data.field_cal: must leave test episodes (< 1)')
    for which in ('teacher', 'student'):
        model = getattr(cfg, which).model
        if not model.cnn_channels or min(model.cnn_channels) < 1:
            raise ConfigError(f'{which}.model.cnn_channels: must be a list of counts >= 1, got '
                              f'{list(model.cnn_channels)}')
        if model.d_model % model.heads:
            raise ConfigError(f'{which}.model.d_model: {model.d_model} is not divisible by '
                              f'{which}.model.heads = {model.heads}')


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten_config(data: dict, prefix: str = '') -> dict:
    """Return a nested mapping as {'a.b.c': value}."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def config_from_dict(data: Optional[dict]) -> TrainConfig:
    """Build and validate a TrainConfig from a nested mapping (missing keys: defaults)."""
    cfg = _build(TrainConfig, data or {})
    _check(cfg)
    return cfg


def load_config(path, overrides: Optional[dict] = None) -> TrainConfig:
    """Read a YAML config; `overrides` maps dotted paths to values (e.g. {'seed': 1})."""
    path = Path(path)
    data = read_mapping(path)
    for dotted, value in (overrides or {}).items():
        apply_override(data, dotted, value)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f'{path}: {err}') from None


def read_yaml_mapping(path: Path, kind: str) -> dict:
    """Return the top-level mapping of a YAML file; ConfigError says what is wrong with it."""
    if not path.is_file():
        raise ConfigError(f'{kind} {path} not found')
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f'{path}: not valid YAML: {err}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: top level must be a mapping')
    return data


def read_mapping(path: Path, seen: tuple = ()) -> dict:
    """
    Return the mapping of a config YAML.

    `base: other.yaml` (a path beside it) is read first and this file's values are merged over
    it, mappings key by key, so a variant states only what differs.
    """
    if path.resolve() in seen:
        raise ConfigError(f'{path}: base configs form a cycle')
    data = read_yaml_mapping(path, 'config file')
    base = data.pop('base', None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f'{path}: base: expected the path of a config file, got {base!r}')
    return _merged(read_mapping(path.parent / base, seen + (path.resolve(),)), data)


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both_maps else value
    return out


def apply_override(data: dict, dotted: str, value) -> None:
    """Set data['a']['b'] = value for dotted = 'a.b' (creating mappings on the way)."""
    keys = dotted.split('.')
    node = data
    for depth, key in enumerate(keys[:-1]):
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f'{dotted}: {".".join(keys[:depth + 1])} is a value, not a '
                              'group of fields')
    node[keys[-1]] = value


def parse_override(text: str):
    """Parse a command-line override 'path.to.field=value' (value read as YAML)."""
    if '=' not in text:
        raise ConfigError(f'override {text!r} must look like path.to.field=value')
    key, value = text.split('=', 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f'override {text!r}: the value is not valid YAML: {err}') from None
    return key.strip(), parsed
