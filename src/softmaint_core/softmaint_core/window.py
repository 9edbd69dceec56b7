"""
Sensor windows for the student: stamped sample buffers with health checks and the assembler.

Shared by the ingestion node (live messages) and offline bag evaluation, so both feed the model
the same numbers; messages become values in messages.py, so the assembler sees only arrays.
Inputs are (stamp [s], numpy values) per *source*, a sensor stream: camera,
tactile, joint_states, actuation, environment. Each source fills columns of one modality of the
input spec (joint_states then actuation make proprio). Rejected samples are counted by reason
and never stored: besides malformed values, a stamp that repeats or goes back, a header
frame_id other than the one configured for the source, and values beyond what the sensor can
physically read (a fault or an attack: a model fed a thousand standard deviations answers
with confident nonsense).

A window ending at `end` covers [end - spec.window, end). It is binned exactly like the dataset's
field view (softmaint_sim.episode.field_view), so training and onboard inputs match:
vectors with resample.bin_to_steps 'mean' (dead taxels, NaN, read as 0 N; an environment quantity
reported as NaN is one the robot does not sense, read as the training mean so that it normalises
to 0); camera frames resized
with image.resize_area when they arrive, binned 'last' and quantised to 8 bits. The raw arrays
are then normalised per channel with the spec's mean/std (camera as value / 255, as in training).

Health of a source at the window end, first match wins:
  ABSENT     nothing ever arrived, valid or not
  INVALID    rejects received in the window exceed max_reject_fraction of all samples there
  STALE      no accepted sample in the window, the newest is older than the source's timeout,
             or fewer than min_coverage of the window's time steps hold a sample (start-up)
  FROZEN     the window's samples, and at least frozen_min_samples of the newest, are all equal
             within frozen_epsilon (a stuck sensor)
  AVAILABLE
A modality is AVAILABLE when all its sources are, else it takes its sources' worst status. An
AVAILABLE camera whose frames' signal-to-noise ratio (image.frame_snr) is below the spec's
min_snr, below nearly all of the model's field training windows, is UNREADABLE instead: the scene
is too dark or turbid (a deep-sea arm under its own lamp reads ~0.3, training windows >= ~1)
and a model fed frames unlike any it learned from answers with confident nonsense, so it reads
the other modalities as it does when a camera fails. Data of a modality that is not AVAILABLE
are zeros in the window.

Beyond health, an AVAILABLE vector modality names its channels whose normalised values leave
the model's training range: more than max_training_std of the training standard deviations from
the training mean (`ModalityWindow.out_of_range`; a deep-sea pressure is ~10^4). The values stay
as read, since the sensor is sound, but the model was not trained on such inputs and the
ingestion node says so in its diagnostics.
"""
from collections import deque
from dataclasses import dataclass, field
import enum
import functools
import itertools
import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .image import frame_snr, resize_area
from .resample import bin_to_steps
from .spec import ENVIRONMENT_FIELDS, ENVIRONMENT_LIMITS, InputSpec, ModalitySpec, SpecError

REJECT_REASONS = (
    'empty',          # no values at all
    'shape',          # wrong number of values or wrong array shape
    'missing_name',   # a joint or actuator the model needs is not in the message
    'non_finite',     # inf, or NaN where NaN means neither a dead taxel nor an unsensed quantity
    'out_of_order',   # stamp older than the source's newest accepted stamp
    'future_stamp',   # stamp ahead of the receive time by more than max_future_stamp
    'encoding',       # image encoding not supported
    'size',           # image data size does not match its height, width and step
    'bad_stamp',      # header stamp is not a time (zero, negative, nanosec >= 1e9)
    'duplicate_stamp',  # stamp equal to the source's newest accepted stamp (a repeated message)
    'frame_id',       # header frame_id is not the one expected_frame_ids names for the source
    'out_of_range',   # a value the sensor cannot physically read (Source.limits, range_max)
    'units',          # readings in other units than the model's
    'duplicate_name',  # a joint or actuator the model needs is named twice
    'too_large',      # more names, readings or pixels than any sensor of the robot gives
    'other_device',   # names none of the joints or actuators the model needs: another device
                      # on the shared topic (a gripper's joint_states); counted, not held
                      # against the source
)
# Every buffer keeps at least frozen_min_samples samples, however old: this bounds its memory
# (1000 camera frames of 32x32 are 12 MB).
MAX_FROZEN_MIN_SAMPLES = 1000
# Reasons that do not make a source INVALID: the message was never meant for the model.
NOT_HELD_AGAINST = ('other_device',)
SOURCE_NAMES = ('camera', 'tactile', 'joint_states', 'actuation', 'environment')
# Largest magnitude of any reading where no tighter physical limit is known.
MAX_MAGNITUDE = 1e6
# A bend sensor reads at most a full turn [rad]; a chamber's gauge pressure lies between
# vacuum and 100 bar [kPa].
BEND_LIMITS = (-2.0 * math.pi, 2.0 * math.pi)
PRESSURE_LIMITS = (-101.325, 1e4)


class Status(enum.IntEnum):
    """Availability of a source or modality (values of softmaint_interfaces/ModalityTensor)."""

    AVAILABLE = 0
    STALE = 1
    INVALID = 2
    FROZEN = 3
    ABSENT = 4
    UNREADABLE = 5   # sound frames the model cannot read (spec min_snr: too dark or turbid)


# Which status a multi-source modality takes when its sources disagree (most telling first).
_SEVERITY = (Status.INVALID, Status.FROZEN, Status.STALE, Status.ABSENT, Status.AVAILABLE)


class InputError(ValueError):
    """A rejected sample; `reason` is one of REJECT_REASONS, the text says what was wrong."""

    def __init__(self, reason: str, message: str):
        if reason not in REJECT_REASONS:
            raise ValueError(f'unknown reject reason {reason!r}')
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """One sensor stream feeding `modality`; a sample is an array of `shape`."""

    name: str
    modality: str
    shape: Tuple[int, ...]        # (width,) for vectors, (height, width, 3) for camera frames
    nan_allowed: bool = False     # NaN in single elements allowed (dead taxels), read as 0
    # NaN in single elements means "not sensed" and reads as these values (environment: the
    # training mean of each quantity, so it normalises to 0); () = NaN is not allowed
    unsensed_fill: Tuple[float, ...] = ()
    # (low, high) per value: what the sensor can physically read; () = +-MAX_MAGNITUDE
    limits: Tuple[Tuple[float, float], ...] = ()

    @property
    def is_image(self) -> bool:
        """Return whether samples are RGB frames (resized on arrival, binned 'last')."""
        return self.modality == 'camera'

    @functools.cached_property
    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return (low, high) float32 bounds of the values, built once (checked per sample)."""
        pairs = zip(*self.limits) if self.limits else (-MAX_MAGNITUDE, MAX_MAGNITUDE)
        low, high = (np.asarray(bound, np.float32) for bound in pairs)
        return low, high


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the health checks (the ingestion node's parameters)."""

    stale_timeout: float = 0.5         # [s] minimum silence before a source is STALE ...
    stale_periods: float = 1.5         # ... or this many nominal sample periods, if longer
    frozen_epsilon: float = 1e-6       # largest change [units of the values] that is no change
    # fewer equal samples than this are not called FROZEN (each buffer keeps this many)
    frozen_min_samples: int = 3
    max_future_stamp: float = 0.1      # [s] tolerated lead of a stamp over the receive time
    max_reject_fraction: float = 0.25  # of a window's samples, before the source is INVALID
    min_coverage: float = 0.5          # fraction of time steps with samples, else STALE
    max_training_std: float = 50.0     # farther from the training mean: outside the training range
    # source -> the header frame_id its messages must carry (sources not named: any)
    expected_frame_ids: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the field that is out of range."""
        unknown = sorted(set(self.expected_frame_ids) - set(SOURCE_NAMES))
        if unknown or not all(isinstance(v, str) for v in self.expected_frame_ids.values()):
            raise ValueError(f'expected_frame_ids must map sources of {SOURCE_NAMES} to frame '
                             f'names, got {dict(self.expected_frame_ids)}')
        checks = (
            ('stale_timeout', self.stale_timeout >= 0.0, '>= 0 s'),
            ('stale_periods', self.stale_periods > 0.0, '> 0'),
            ('frozen_epsilon', self.frozen_epsilon >= 0.0, '>= 0'),
            ('frozen_min_samples', 2 <= self.frozen_min_samples <= MAX_FROZEN_MIN_SAMPLES,
             f'in [2, {MAX_FROZEN_MIN_SAMPLES}]'),
            ('max_future_stamp', self.max_future_stamp >= 0.0, '>= 0 s'),
            ('max_reject_fraction', 0.0 <= self.max_reject_fraction < 1.0, 'in [0, 1)'),
            ('min_coverage', 0.0 <= self.min_coverage <= 1.0, 'in [0, 1]'),
            ('max_training_std', self.max_training_std > 0.0, '> 0'),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f'{name} must be {expected}, got {getattr(self, name)}')


@dataclass(frozen=True)
class SourceHealth:
    """Health of one source over the window ending at `end`."""

    status: Status
    detail: str                 # why, for logs and diagnostics
    rate: float                 # accepted samples per second with stamps in the window
    coverage: float             # fraction of the modality's time steps holding a sample
    age: float                  # [s] end minus the newest accepted stamp before it (inf: none)
    last_stamp: Optional[float]  # newest accepted stamp in the window (None: none)
    accepted: int               # since start
    rejected: Dict[str, int]    # since start, by reason (every reason present)
    rejected_in_window: int     # received in (end - window, end]


@dataclass
class ModalityWindow:
    """One modality of a window."""

    name: str
    status: Status
    raw: np.ndarray             # physical units, field-view dtype: camera uint8, else float32
    data: np.ndarray            # normalised float32, zeros unless AVAILABLE
    coverage: float
    rate: float
    # channel (channel_name) -> largest |normalised value| where it leaves the training range
    out_of_range: Dict[str, float] = field(default_factory=dict)
    snr: Optional[float] = None     # camera frames' image.frame_snr (None: no frames or floor)


@dataclass
class Window:
    """A time-aligned window of all modalities of the input spec, in spec order."""

    start: float
    end: float
    spec_id: str
    modalities: Tuple[ModalityWindow, ...]
    sources: Dict[str, SourceHealth]
    last_input_stamp: Optional[float]   # newest accepted stamp in the window (None: none)

    @property
    def mask(self) -> np.ndarray:
        """Availability mask [M] bool in spec order."""
        return np.array([m.status == Status.AVAILABLE for m in self.modalities])

    def raw(self) -> Dict[str, np.ndarray]:
        """Modality -> raw array (what the dataset's field view holds)."""
        return {m.name: m.raw for m in self.modalities}

    def inputs(self) -> Dict[str, np.ndarray]:
        """ONNX inputs without the batch axis: modality -> normalised array, plus 'mask'."""
        arrays = {m.name: m.data for m in self.modalities}
        arrays['mask'] = self.mask.astype(np.float32)
        return arrays


def default_sources(spec: InputSpec) -> Tuple[Source, ...]:
    """Return a field robot's sources for `spec`: proprio from joints + actuation."""
    sources = []
    for mod in spec.modalities:
        if mod.name == 'camera':
            if mod.features[0] != 3 or len(mod.features) != 3:
                raise SpecError(f'camera features must be (3, H, W), got {mod.features}')
            sources.append(Source('camera', 'camera', (mod.features[1], mod.features[2], 3)))
        elif mod.name == 'tactile':
            sources.append(Source('tactile', 'tactile', mod.features, nan_allowed=True))
        elif mod.name == 'proprio':
            sources.append(Source('joint_states', 'proprio', (spec.joints,),
                                  limits=(BEND_LIMITS,) * spec.joints))
            sources.append(Source('actuation', 'proprio', (2 * spec.actuators,),
                                  limits=(PRESSURE_LIMITS,) * (2 * spec.actuators)))
        elif mod.name == 'environment':
            if mod.features != (len(ENVIRONMENT_FIELDS),):
                raise SpecError(f'environment features must be ({len(ENVIRONMENT_FIELDS)},) '
                                f'{ENVIRONMENT_FIELDS}, got {mod.features}')
            fill = mod.mean or (0.0,) * mod.features[0]   # normalises to 0 either way
            sources.append(Source('environment', 'environment', mod.features,
                                  unsensed_fill=tuple(map(float, fill)),
                                  limits=ENVIRONMENT_LIMITS))
    return tuple(sources)


def normalise(modality: ModalitySpec, raw: np.ndarray, lighting: float = 1.0) -> np.ndarray:
    """
    Model input of raw windows [..., steps, *features]: the one normalisation of the project.

    Camera bytes / 255 (times a `lighting` gain, clipped: training's augmentation), then
    (x - mean) / std per channel; NaN, a quantity the robot does not sense, becomes 0, the
    training mean. Training, the ingestion node and offline evaluation all call this.
    """
    x = raw.astype(np.float32)
    if modality.name == 'camera':
        x /= 255.0
        if lighting != 1.0:
            x = np.clip(x * lighting, 0.0, 1.0)
    if modality.mean:
        lead = x.ndim - len(modality.features)
        shape = (1,) * lead + (modality.channels,) + (1,) * (len(modality.features) - 1)
        x = ((x - np.asarray(modality.mean, dtype=np.float32).reshape(shape))
             / np.asarray(modality.std, dtype=np.float32).reshape(shape))
    x[np.isnan(x)] = 0.0
    return x


def unreadable(modality: ModalitySpec, raw: np.ndarray):
    """
    (Which windows raw [..., steps, *features] are below the spec's min_snr, their frame_snr).

    Only a camera with a floor is judged (frame_snr costs ~1 ms a window); otherwise
    (False, None).
    """
    if modality.name != 'camera' or not modality.min_snr:
        return np.False_, None
    snr = frame_snr(raw)
    return snr < modality.min_snr, snr


def batch_inputs(spec: InputSpec, raw: Mapping[str, np.ndarray], available: np.ndarray
                 ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """
    Model inputs of raw field-view windows [B, ...] as WindowAssembler builds them, batched.

    `available` [B, M] is the sensors' health in spec order; a camera window below the spec's
    min_snr is unavailable too (UNREADABLE). Returns (modality -> normalised array with
    unavailable rows zeroed, the resulting mask [B, M] bool).
    """
    mask = np.array(available, dtype=bool)
    feeds = {}
    for i, mod in enumerate(spec.modalities):
        mask[:, i] &= ~unreadable(mod, raw[mod.name])[0]
        x = normalise(mod, np.asarray(raw[mod.name]))
        x[~mask[:, i]] = 0.0
        feeds[mod.name] = x
    return feeds, mask


def channel_name(modality: str, channel: int) -> str:
    """Readable name of a modality's normalisation channel ('pressure', 'proprio[3]')."""
    return ENVIRONMENT_FIELDS[channel] if modality == 'environment' else f'{modality}[{channel}]'


def out_of_training_range(modality: ModalitySpec, data: np.ndarray,
                          limit: float) -> Dict[str, float]:
    """
    Name the channels of a normalised window that leave the model's training range.

    Channels of [steps, D] beyond `limit` training standard deviations from the training mean:
    channel name -> the largest |value| there. The camera (bytes / 255, bounded) and modalities
    without statistics are never out of range.
    """
    if modality.name == 'camera' or not modality.mean:
        return {}
    worst = np.abs(data).reshape(-1, modality.channels).max(axis=0)
    return {channel_name(modality.name, i): float(z) for i, z in enumerate(worst) if z > limit}


class _Buffer:
    """Accepted samples of one source (ascending stamps) and the receive times of rejects."""

    def __init__(self, source: Source):
        self.source = source
        self.stamps = deque()
        self.values = deque()
        self.reject_times = deque()
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.accepted = 0

    @property
    def seen(self) -> bool:
        return self.accepted > 0 or any(self.rejected.values())

    def check(self, stamp: float, values, now: float, config: HealthConfig,
              frame_id: Optional[str]) -> np.ndarray:
        """Return the sample as stored, or raise InputError."""
        expected = config.expected_frame_ids.get(self.source.name)
        if expected and frame_id is not None and frame_id != expected:
            raise InputError('frame_id', f'frame_id {frame_id[:40]!r} is not {expected!r}')
        if stamp > now + config.max_future_stamp:
            raise InputError('future_stamp', f'stamp {stamp:.3f} s is {stamp - now:.3f} s '
                             f'ahead of the receive time {now:.3f} s')
        if self.stamps and stamp == self.stamps[-1]:
            raise InputError('duplicate_stamp', f'stamp {stamp:.3f} s repeats the previous '
                             'sample')
        if self.stamps and stamp < self.stamps[-1]:
            raise InputError('out_of_order', f'stamp {stamp:.3f} s is older than the previous '
                             f'sample ({self.stamps[-1]:.3f} s)')
        return _checked_frame(values, self.source) if self.source.is_image else \
            _checked_vector(values, self.source)

    def store(self, stamp: float, value: np.ndarray, keep_after: float, keep_last: int) -> None:
        self.stamps.append(stamp)
        self.values.append(value)
        self.accepted += 1
        while len(self.stamps) > keep_last and self.stamps[0] < keep_after:
            self.stamps.popleft()
            self.values.popleft()

    def count_reject(self, reason: str, now: float, keep_after: float) -> None:
        self.rejected[reason] += 1
        if reason in NOT_HELD_AGAINST:
            return
        self.reject_times.append(now)
        while self.reject_times and self.reject_times[0] < keep_after:
            self.reject_times.popleft()

    def clear(self) -> None:
        self.__init__(self.source)


def _checked_vector(values, source: Source) -> np.ndarray:
    try:
        with np.errstate(over='ignore'):   # out of float32 range becomes inf: rejected below
            array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError('shape', f'values are not numbers: {err}') from err
    if array.size == 0:
        raise InputError('empty', 'no values')
    if array.shape != source.shape:
        raise InputError('shape', f'values of shape {array.shape}, expected {source.shape}')
    nan = np.isnan(array)
    nan_readable = source.nan_allowed or bool(source.unsensed_fill)
    if np.isinf(array).any() or (nan.any() and not nan_readable) or nan.all():
        raise InputError('non_finite', f'values hold NaN or inf: {array.tolist()}')
    low, high = source.bounds
    outside = (array < low) | (array > high)          # NaN compares False
    if outside.any():
        raise InputError('out_of_range', f'values {array[outside].tolist()} beyond what the '
                         'sensor can read')
    if not nan.any():
        return array
    if source.unsensed_fill:
        return np.where(nan, np.asarray(source.unsensed_fill, dtype=np.float32), array)
    return np.where(nan, np.float32(0.0), array)


def _checked_frame(values, source: Source) -> np.ndarray:
    image = np.asarray(values, dtype=np.float32)
    if image.size == 0:
        raise InputError('empty', 'empty image')
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError('shape', f'image of shape {image.shape}, expected [height, width, 3]')
    with np.errstate(invalid='ignore'):   # +inf and -inf in one block sum to NaN: refused below
        resized = resize_area(image, source.shape[0], source.shape[1])
    # Area sums carry a NaN or inf into the small frame (no full-size mask of a 16 MP frame);
    # nearest-pixel upsampling may skip one, so a smaller frame is checked whole.
    downsampled = image.shape[0] >= resized.shape[0] and image.shape[1] >= resized.shape[1]
    if not np.isfinite(resized if downsampled else image).all():
        raise InputError('non_finite', 'image holds NaN or inf')
    return resized


class WindowAssembler:
    """Buffers samples per source, checks their health and assembles windows for the model."""

    def __init__(self, spec: InputSpec, config: HealthConfig = HealthConfig(),
                 sources: Optional[Sequence[Source]] = None):
        spec.validate()
        config.validate()
        self.spec = spec
        self.config = config
        self.sources = tuple(sources) if sources is not None else default_sources(spec)
        for mod in spec.modalities:
            widths = [s.shape[0] for s in self.sources if s.modality == mod.name]
            if mod.name != 'camera' and sum(widths) != mod.features[0]:
                raise SpecError(f'sources of {mod.name} give {sum(widths)} features, the spec '
                                f'needs {mod.features[0]}')
        self._buffers = {s.name: _Buffer(s) for s in self.sources}
        self._retention = 2.0 * spec.window   # lets a window end up to one window behind

    def timeout(self, source: str) -> float:
        """Silence [s] after which `source` is STALE."""
        rate = self.spec.modality(self._buffers[source].source.modality).rate
        return max(self.config.stale_timeout, self.config.stale_periods / rate)

    def push(self, source: str, stamp: float, values, now: float,
             frame_id: Optional[str] = None) -> Optional[InputError]:
        """
        Validate and store one sample received at `now` (same clock as the stamps).

        `frame_id` is its header's, checked against config.expected_frame_ids (None: not
        checked). Returns None when it was accepted, else the InputError (already counted).
        """
        buffer = self._buffers[source]
        try:
            value = buffer.check(float(stamp), values, now, self.config, frame_id)
        except InputError as err:
            return self.reject(source, err, now)
        buffer.store(float(stamp), value, float(stamp) - self._retention,
                     self.config.frozen_min_samples)
        return None

    def reject(self, source: str, error: InputError, now: float) -> InputError:
        """Count a sample of `source` rejected before it could be pushed (e.g. bad encoding)."""
        self._buffers[source].count_reject(error.reason, now, now - self._retention)
        return error

    def reset(self) -> None:
        """Forget every sample and count (e.g. after the clock jumped back)."""
        for buffer in self._buffers.values():
            buffer.clear()

    def health(self, end: float) -> Dict[str, SourceHealth]:
        """Health of every source over the window ending at `end`."""
        return {name: self._health(buffer, end) for name, buffer in self._buffers.items()}

    def _health(self, buffer: _Buffer, end: float) -> SourceHealth:
        window = self.spec.window
        start = end - window
        stamps = np.fromiter(buffer.stamps, dtype=np.float64, count=len(buffer.stamps))
        first, stop = np.searchsorted(stamps, [start, end])   # window: stamps[first:stop]
        steps = self.spec.modality(buffer.source.modality).steps
        filled = np.unique(np.floor((stamps[first:stop] - start) * (steps / window)))
        coverage = float(np.count_nonzero((filled >= 0) & (filled < steps))) / steps
        reject_times = np.fromiter(buffer.reject_times, dtype=np.float64)
        rejects = int(np.count_nonzero((reject_times > start) & (reject_times <= end)))
        age = end - stamps[stop - 1] if stop else math.inf
        status, detail = self._status(buffer, first, stop, rejects, age, coverage)
        return SourceHealth(
            status=status, detail=detail, rate=(stop - first) / window, coverage=coverage,
            age=float(age), last_stamp=float(stamps[stop - 1]) if stop > first else None,
            accepted=buffer.accepted, rejected=dict(buffer.rejected), rejected_in_window=rejects)

    def _status(self, buffer: _Buffer, first: int, stop: int, rejects: int, age: float,
                coverage: float):
        """Status of samples buffer[first:stop] in the window, `rejects` received in it."""
        config = self.config
        count = stop - first
        if not buffer.seen:
            return Status.ABSENT, 'no message received yet'
        if rejects > config.max_reject_fraction * (rejects + count):
            worst = max(buffer.rejected, key=buffer.rejected.get)
            return Status.INVALID, (f'{rejects} of {rejects + count} samples in the window '
                                    f'rejected (most often: {worst})')
        timeout = self.timeout(buffer.source.name)
        if count == 0 or age > timeout:
            since = 'ever' if math.isinf(age) else f'for {age:.2f} s'
            others = buffer.rejected['other_device'] if not buffer.accepted else 0
            named = (f'; {others} messages named none of the joints or actuators the model '
                     'needs' if others else '')
            return Status.STALE, f'no sample {since} (timeout {timeout:.2f} s){named}'
        if coverage < config.min_coverage:
            return Status.STALE, (f'samples in {coverage:.0%} of the time steps '
                                  f'(minimum {config.min_coverage:.0%})')
        # The window's samples, and the newest frozen_min_samples even if some are older.
        recent = list(itertools.islice(
            buffer.values, max(0, min(first, stop - config.frozen_min_samples)), stop))
        if len(recent) >= config.frozen_min_samples:
            values = np.stack(recent)
            if np.abs(values - values[0]).max() <= config.frozen_epsilon:
                return Status.FROZEN, f'values unchanged over the last {len(recent)} samples'
        return Status.AVAILABLE, 'ok'

    def assemble(self, end: float) -> Window:
        """Assemble the window ending at `end` (deterministic for the same pushes)."""
        health = self.health(end)
        start = end - self.spec.window
        modalities = []
        for mod in self.spec.modalities:
            names = [s.name for s in self.sources if s.modality == mod.name]
            status = _combined(health[n].status for n in names)
            raw = np.zeros(mod.shape, np.uint8 if mod.name == 'camera' else np.float32)
            snr = None
            if status == Status.AVAILABLE:
                raw = self._binned(mod, names, start)
                below, snr = unreadable(mod, raw)
                status = Status.UNREADABLE if below else status
            data = normalise(mod, raw) if status == Status.AVAILABLE else \
                np.zeros(mod.shape, np.float32)
            modalities.append(ModalityWindow(
                name=mod.name, status=status, raw=raw, data=data,
                coverage=min(health[n].coverage for n in names),
                rate=min(health[n].rate for n in names),
                out_of_range=out_of_training_range(mod, data, self.config.max_training_std)
                if status == Status.AVAILABLE else {}, snr=None if snr is None else float(snr)))
        last_stamps = [h.last_stamp for h in health.values() if h.last_stamp is not None]
        return Window(start=start, end=end, spec_id=self.spec.spec_id,
                      modalities=tuple(modalities), sources=health,
                      last_input_stamp=max(last_stamps) if last_stamps else None)

    def _binned(self, mod: ModalitySpec, names, start: float) -> np.ndarray:
        parts = []
        for name in names:
            buffer = self._buffers[name]
            stamps = np.fromiter(buffer.stamps, dtype=np.float64, count=len(buffer.stamps))
            values = np.stack(buffer.values)
            reduce = 'last' if buffer.source.is_image else 'mean'
            binned, _ = bin_to_steps(stamps, values, start, self.spec.window, mod.steps, reduce)
            parts.append(binned)
        if mod.name == 'camera':
            quantised = np.rint(parts[0] * 255.0).clip(0, 255).astype(np.uint8)
            return quantised.transpose(0, 3, 1, 2)
        return np.concatenate(parts, axis=1)


def _combined(statuses) -> Status:
    statuses = set(statuses)
    return next(s for s in _SEVERITY if s in statuses)
