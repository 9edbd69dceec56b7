"""
Model metadata: the JSON file beside every exported ONNX student.

It tells the onboard nodes how to feed the model (input spec with normalisation), how to read
its outputs (class names, calibration temperature, conformal thresholds) and which file it
belongs to (SHA-256). Nodes refuse a model whose file or spec does not match.
"""
from dataclasses import asdict, dataclass, field
import hashlib
import json
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from .spec import InputSpec, OUTPUTS, SpecError
from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS, policy_class_error

FORMAT_VERSION = 1


class MetadataError(ValueError):
    """A model whose metadata is missing, malformed or does not match its file."""


@dataclass
class ModelMetadata:
    """Everything the onboard side needs to know about one exported student."""

    model_id: str                       # name and version, e.g. 'student-field-v1'
    sha256: str                         # of the .onnx file
    input_spec: InputSpec
    members: int                        # ensemble members in the graph (K)
    temperature_fatigue: float = 1.0    # calibration temperatures (divide logits)
    temperature_damage: float = 1.0
    conformal_alpha: float = 0.1        # miscoverage: sets cover the truth with 1 - alpha
    # score thresholds q-hat (score = 1 - p(true class)): one for every class (marginal sets)
    # or one per class (class-conditional sets), softmaint_core.calibration
    conformal_fatigue: Union[float, Tuple[float, ...]] = 1.0
    conformal_damage: Union[float, Tuple[float, ...]] = 1.0
    # miss-rate control of "some damage" (calibration.conformal_floor): a {none} damage set
    # whose P(damage) reaches the threshold also holds the most probable damage; None = off
    damage_miss_alpha: Optional[float] = None
    damage_miss_threshold: Optional[float] = None
    fatigue_classes: Tuple[str, ...] = FATIGUE_LEVELS
    damage_classes: Tuple[str, ...] = DAMAGE_TYPES
    metrics: Dict[str, float] = field(default_factory=dict)
    # identities (dataset.card_digest) of the training data and of the separately generated
    # calibration data ('' = calibrated on the training data's own split); models exported
    # before 2026-12-07 hold the SHA-256 of the training data's whole card file
    dataset_card_sha256: str = ''
    calibration_card_sha256: str = ''
    training_config: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """Serialise to indented JSON."""
        data = asdict(self)
        data['input_spec'] = self.input_spec.to_dict()
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'ModelMetadata':
        """Parse and validate; raises MetadataError naming the bad field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MetadataError(f'metadata is not valid JSON: {err}') from err
        if not isinstance(data, dict):
            raise MetadataError(f'metadata must be a JSON object, got {type(data).__name__}')
        if data.get('format_version') != FORMAT_VERSION:
            raise MetadataError(f'metadata format_version {data.get("format_version")!r} '
                                f'is not {FORMAT_VERSION}: re-export the model')
        try:
            data['input_spec'] = InputSpec.from_dict(data['input_spec'])
            data['fatigue_classes'] = tuple(data['fatigue_classes'])
            data['damage_classes'] = tuple(data['damage_classes'])
            for name in ('conformal_fatigue', 'conformal_damage'):
                if isinstance(data.get(name), list):
                    data[name] = tuple(data[name])
            meta = cls(**data)
            meta.validate()       # inside: a field of the wrong type fails its comparison
        except (KeyError, TypeError, SpecError) as err:
            raise MetadataError(f'metadata is malformed: {err}') from err
        return meta

    def validate(self) -> None:
        """Check ranges; raise MetadataError naming the field."""
        if not isinstance(self.model_id, str) or not self.model_id:
            raise MetadataError(f'model_id must be a non-empty string, got {self.model_id!r}')
        if not all(isinstance(c, str) for c in self.fatigue_classes + self.damage_classes):
            raise MetadataError('class names must be strings, got '
                                f'{self.fatigue_classes + self.damage_classes}')
        if self.members < 1:
            raise MetadataError(f'members must be >= 1, got {self.members}')
        for name in ('temperature_fatigue', 'temperature_damage'):
            if not getattr(self, name) > 0:
                raise MetadataError(f'{name} must be > 0, got {getattr(self, name)}')
        if not 0 < self.conformal_alpha < 1:
            raise MetadataError(f'conformal_alpha must be in (0, 1), got {self.conformal_alpha}')
        for name, classes in (('conformal_fatigue', self.fatigue_classes),
                              ('conformal_damage', self.damage_classes)):
            thresholds = getattr(self, name)
            values = thresholds if isinstance(thresholds, tuple) else (thresholds,)
            if isinstance(thresholds, tuple) and len(thresholds) != len(classes):
                raise MetadataError(f'{name} has {len(thresholds)} per-class thresholds for '
                                    f'{len(classes)} classes')
            if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values):
                raise MetadataError(f'{name} must be a q-hat in [0, 1] or one per class, '
                                    f'got {thresholds!r}')
        if (self.damage_miss_alpha is None) != (self.damage_miss_threshold is None):
            raise MetadataError('damage_miss_alpha and damage_miss_threshold come together')
        if self.damage_miss_threshold is not None and not (
                0 < self.damage_miss_alpha < 1 and 0 <= self.damage_miss_threshold <= 1):
            raise MetadataError(f'damage_miss_alpha must be in (0, 1) and damage_miss_threshold '
                                f'in [0, 1], got {self.damage_miss_alpha!r}, '
                                f'{self.damage_miss_threshold!r}')
        classes_error = policy_class_error(self.fatigue_classes, self.damage_classes)
        if classes_error:
            raise MetadataError(classes_error)
        if len(self.sha256) != 64:
            raise MetadataError('sha256 must be 64 hex digits')


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def metadata_path(model_path: Path) -> Path:
    """Metadata file that belongs to `model_path` (same stem, .json)."""
    return Path(model_path).with_suffix('.json')


def read_model_files(model_path: Path) -> Tuple[bytes, bytes]:
    """Read a model and the metadata beside it once; MetadataError names a missing one."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise MetadataError(f'model file {model_path} not found')
    meta_file = metadata_path(model_path)
    if not meta_file.is_file():
        raise MetadataError(f'metadata {meta_file} not found beside the model')
    return model_path.read_bytes(), meta_file.read_bytes()


def verified_metadata(model_name: str, model_bytes: bytes, metadata_bytes: bytes
                      ) -> ModelMetadata:
    """Parse metadata and check the model's SHA-256 against it, both as bytes already read."""
    try:
        text = metadata_bytes.decode('utf-8')
    except UnicodeDecodeError as err:
        raise MetadataError(f'metadata of {model_name} is not UTF-8 text: {err}') from err
    meta = ModelMetadata.from_json(text)
    actual = hashlib.sha256(model_bytes).hexdigest()
    if actual != meta.sha256:
        raise MetadataError(f'{model_name}: SHA-256 {actual[:12]}… does not match the '
                            f'metadata ({meta.sha256[:12]}…): file corrupt or not this model')
    return meta


def load_verified(model_path: Path) -> ModelMetadata:
    """Load the metadata beside `model_path` and check the file's SHA-256 against it."""
    return verified_metadata(Path(model_path).name, *read_model_files(model_path))


def check_onnx_io(input_names, output_names, meta: ModelMetadata) -> None:
    """Check an ONNX session's input/output names against the metadata's spec."""
    expected_in = set(meta.input_spec.names) | {'mask'}
    if set(input_names) != expected_in:
        raise MetadataError(f'model inputs {sorted(input_names)} do not match the input spec '
                            f'{sorted(expected_in)}')
    missing = set(OUTPUTS) - set(output_names)
    if missing:
        raise MetadataError(f'model lacks outputs {sorted(missing)}')
