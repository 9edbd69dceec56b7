"""
Input specs of the models: which modalities, at what rates and shapes, and the ONNX contract.

A window covers `window` seconds. Each modality is resampled to its own number of time steps
inside the window (camera frames are few, joint states many) and normalised per channel with
stats fitted by the offline tool. The same spec drives the simulator's dataset views, training,
ONNX export, the ingestion node and offline bag evaluation, so they cannot drift apart.

ONNX contract of a student (all float32, B = batch, K = ensemble members, M = modalities):
  inputs   <modality name>  [B, steps, *features]   normalised; zeros where unavailable
           mask             [B, M]                  1.0 = available, 0.0 = missing
  outputs  fatigue_logits   [B, K, len(FATIGUE_LEVELS)]
           damage_logits    [B, K, len(DAMAGE_TYPES)]
           urgency          [B, K]                  in [0, 1]
           reconstruction   [B, K, M, embedding]    predicted feature vector of every modality
"""
from dataclasses import asdict, dataclass, replace
import hashlib
import json
import math
from typing import Dict, Sequence, Tuple

MODALITIES = ('camera', 'tactile', 'proprio', 'environment')
MASK_INPUT = 'mask'
OUTPUTS = ('fatigue_logits', 'damage_logits', 'urgency', 'reconstruction')


class SpecError(ValueError):
    """An input spec or a tensor that does not match one."""


def _positive(value: float) -> bool:
    """Return whether `value` is finite and > 0 (NaN slips past a bare `<= 0` test)."""
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class ModalitySpec:
    """One modality as the model sees it."""

    name: str
    steps: int                      # time steps per window after resampling
    features: Tuple[int, ...]       # shape of one step: (C, H, W) for images, (D,) for vectors
    rate: float                     # nominal sensor rate it is resampled from [Hz]
    mean: Tuple[float, ...] = ()    # per-channel normalisation (len = features[0]); () = identity
    std: Tuple[float, ...] = ()
    # Camera only: windows whose frames' image.frame_snr is below this are UNREADABLE (a scene
    # too dark or turbid for the model: below nearly all its field training windows); 0 = none.
    min_snr: float = 0.0

    @property
    def shape(self) -> Tuple[int, ...]:
        """Shape of this modality in one window: (steps, *features)."""
        return (self.steps,) + tuple(self.features)

    @property
    def channels(self) -> int:
        """Return how many normalisation channels there are (the first feature size)."""
        return self.features[0]

    def validate(self) -> None:
        """Raise SpecError naming the field that is wrong."""
        if self.name not in MODALITIES:
            raise SpecError(f'modality name {self.name!r} is not one of {MODALITIES}')
        if self.steps < 1:
            raise SpecError(f'{self.name}.steps must be >= 1, got {self.steps}')
        if not self.features or any(int(d) < 1 for d in self.features):
            raise SpecError(f'{self.name}.features must be positive sizes, got {self.features}')
        if not _positive(self.rate):
            raise SpecError(f'{self.name}.rate must be finite and > 0 Hz, got {self.rate}')
        if len(self.mean) != len(self.std):
            raise SpecError(f'{self.name}: mean and std must have the same length')
        if self.mean and len(self.mean) != self.channels:
            raise SpecError(
                f'{self.name}: mean/std need {self.channels} channels, got {len(self.mean)}')
        if not all(map(_positive, self.std)) or not all(map(math.isfinite, self.mean)):
            raise SpecError(f'{self.name}: std must be finite and > 0, mean finite')
        if not 0 <= self.min_snr < math.inf or (self.min_snr and self.name != 'camera'):
            raise SpecError(f'{self.name}.min_snr must be finite and >= 0, and 0 but for the '
                            f'camera; got {self.min_snr}')


@dataclass(frozen=True)
class InputSpec:
    """All modalities of one model, in the order of the mask input."""

    window: float                   # window length [s]
    hop: float                      # time between consecutive windows [s]
    modalities: Tuple[ModalitySpec, ...]
    joints: int                     # bending angles in proprio
    actuators: int                  # actuators (command and achieved) in proprio
    embedding: int = 32             # size of one modality's feature vector (reconstruction)
    description: str = ''

    def modality(self, name: str) -> ModalitySpec:
        """Return the spec of modality `name`."""
        for spec in self.modalities:
            if spec.name == name:
                return spec
        raise SpecError(f'modality {name!r} is not in this spec ({self.names})')

    @property
    def names(self) -> Tuple[str, ...]:
        """Modality names in mask order."""
        return tuple(m.name for m in self.modalities)

    @property
    def spec_id(self) -> str:
        """Short content hash: two specs with the same id produce identical windows."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def validate(self) -> None:
        """Raise SpecError naming the field that is wrong."""
        if not (_positive(self.window) and _positive(self.hop)):
            raise SpecError(f'window and hop must be finite and > 0 s, got {self.window}, '
                            f'{self.hop}')
        if len(set(self.names)) != len(self.names):
            raise SpecError(f'modality names repeat: {self.names}')
        for spec in self.modalities:
            spec.validate()
        if 'proprio' in self.names:
            expected = proprio_size(self.joints, self.actuators)
            got = self.modality('proprio').features
            if got != (expected,):
                raise SpecError(f'proprio.features must be ({expected},) for {self.joints} '
                                f'joints and {self.actuators} actuators, got {got}')

    def with_normalisation(self, stats: Dict[str, Tuple[Sequence[float], Sequence[float]]]):
        """Return a copy with per-channel (mean, std) set for the named modalities."""
        modalities = tuple(
            replace(m, mean=tuple(map(float, stats[m.name][0])),
                    std=tuple(map(float, stats[m.name][1])))
            if m.name in stats else m
            for m in self.modalities)
        return replace(self, modalities=modalities)

    def with_min_snr(self, min_snr: float) -> 'InputSpec':
        """Return a copy whose camera windows below `min_snr` are UNREADABLE."""
        return replace(self, modalities=tuple(
            replace(m, min_snr=float(min_snr)) if m.name == 'camera' else m
            for m in self.modalities))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict; min_snr only where set, so older specs keep their spec_id."""
        data = asdict(self)
        for modality in data['modalities']:
            if not modality['min_snr']:
                del modality['min_snr']
        return data

    @classmethod
    def from_dict(cls, data: dict) -> 'InputSpec':
        """Inverse of to_dict; raises SpecError on missing or wrong fields."""
        try:
            modalities = tuple(
                ModalitySpec(name=m['name'], steps=int(m['steps']),
                             features=tuple(int(d) for d in m['features']),
                             rate=float(m['rate']), mean=tuple(m.get('mean', ())),
                             std=tuple(m.get('std', ())),
                             min_snr=float(m.get('min_snr', 0.0)))
                for m in data['modalities'])
            spec = cls(window=float(data['window']), hop=float(data['hop']),
                       modalities=modalities, joints=int(data['joints']),
                       actuators=int(data['actuators']),
                       embedding=int(data.get('embedding', 32)),
                       description=str(data.get('description', '')))
        except (KeyError, TypeError, ValueError, OverflowError) as err:   # int(inf) overflows
            raise SpecError(f'input spec is malformed: {err!r}') from err
        spec.validate()
        return spec


def proprio_size(joints: int, actuators: int) -> int:
    """Features per proprio step: joint angles [rad], then commands, then achieved actuation."""
    return joints + 2 * actuators


def _spec(camera_hw, camera_steps, taxels, joints, actuators, description):
    return InputSpec(
        window=2.0, hop=1.0, joints=joints, actuators=actuators, description=description,
        modalities=(
            ModalitySpec('camera', camera_steps, (3,) + camera_hw, rate=camera_steps / 2.0),
            ModalitySpec('tactile', 20, (taxels,), rate=100.0),
            ModalitySpec('proprio', 20, (proprio_size(joints, actuators),), rate=100.0),
            ModalitySpec('environment', 2, (4,), rate=1.0),
        ))


# What a field robot has: a small camera at 5 Hz, a strip of 8 taxels, 4 bend sensors.
FIELD_SPEC = _spec((32, 32), 10, taxels=8, joints=4, actuators=2,
                   description='field robot: 32x32 camera @5 Hz, 8 taxels, 4 bend sensors')
# What the simulator gives the teacher: 64x64 camera @10 Hz, 32 taxels, both bending angles of
# every one of the arm's 20 joints.
TEACHER_SPEC = _spec((64, 64), 20, taxels=32, joints=40, actuators=2,
                     description='simulation: 64x64 camera @10 Hz, 32 taxels, 20 joints x 2 '
                                 'bending planes')

ENVIRONMENT_FIELDS = ('temperature', 'humidity', 'co2', 'pressure')
# What an environment sensor can read, per field: above absolute zero [degC], relative
# humidity as a fraction (not percent), CO2 up to pure [ppm], absolute pressure up to the
# deepest sea (110 MPa) with margin [kPa]; some room below zero for the noise of a sensor
# reading nothing (vacuum, no CO2).
ENVIRONMENT_LIMITS = ((-273.15, 1e3), (-0.1, 1.1), (-1e3, 1e6), (-10.0, 2e5))
