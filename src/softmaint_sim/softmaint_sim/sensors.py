"""
Field sensor models: what the field robot's sensors report, with noise and faults.

The same functions turn true (simulated) quantities into sensor readings for the dataset's field
view and for the live sim node, so both see identical sensor physics:

  tactile      8 taxels, each the summed normal force of 4 adjacent simulated taxels [N], noise,
               per-taxel bias, saturation at `taxel_range_max`, dead taxels (NaN on the topic)
  joint_states 4 bend sensors, each the total bending angle over 5 hinges [rad], noise, bias
  actuators    commanded chamber pressure [kPa] (exact) and the chamber's pressure gauge [kPa],
               noise
  environment  temperature [degC], humidity [0, 1], CO2 [ppm], pressure [kPa], noise, bias
  camera       64x64 rgb8, sensor noise, frame-to-frame gain flicker, lighting shifts; an
               application profile adds the optics of its medium (Optics: turbid water, harsh
               contrast) and may lack environment quantities (NaN = not sensed)

Faults are drawn per episode (Faults.sample) and applied to whole streams or from a time on.
"""
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np
from softmaint_core.spec import MODALITIES

from .arm import BEND_SENSORS, FIELD_TAXELS, SEGMENTS, TAXELS


@dataclass(frozen=True)
class NoiseModel:
    """Noise levels of the field robot's sensors (the field domain is noisier)."""

    taxel_sigma: float = 0.03        # [N]
    taxel_range_max: float = 4.0     # [N] saturation of one field taxel
    bend_sigma: float = 0.01         # [rad]
    achieved_sigma: float = 0.02     # pressure gauge: fraction of reading, plus PRESSURE_FLOOR
    env_sigma: tuple = (0.15, 0.01, 15.0, 0.05)
    image_sigma: float = 0.02        # additive, of full scale
    image_flicker: float = 0.03      # frame-to-frame gain sigma
    stamp_jitter: float = 0.0005     # [s]
    sample_loss: float = 0.01        # probability that one 100 Hz sample is lost


SIM_NOISE = NoiseModel()
FIELD_NOISE = NoiseModel(taxel_sigma=0.06, taxel_range_max=3.5, bend_sigma=0.02,
                         achieved_sigma=0.04, env_sigma=(0.3, 0.02, 30.0, 0.1),
                         image_sigma=0.035, image_flicker=0.05, stamp_jitter=0.001,
                         sample_loss=0.03)


@dataclass(frozen=True)
class Optics:
    """
    What lies between the scene and a profile's camera, applied to each rendered frame.

    Turbid water (Jaffe-McGlamery, single scattering): the scene's light reaches the lens
    attenuated to `transmission` and a veil of backscattered light of colour `haze` fills the
    rest, so contrast drops: I = transmission * I_scene + (1 - transmission) * haze.
    Harsh light without atmosphere: `contrast` > 1 stretches values away from mid-grey
    (I = 0.5 + contrast * (I - 0.5), clipped), crushing shadows and burning highlights.
    """

    transmission: float = 1.0
    haze: Tuple[float, float, float] = (0.0, 0.0, 0.0)   # [0, 1] RGB of the veil
    contrast: float = 1.0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Frame seen through the medium, float32 in [0, 255] from a rendered uint8 frame."""
        image = frame.astype(np.float32) / 255.0
        image = self.transmission * image + (1.0 - self.transmission) * np.asarray(
            self.haze, dtype=np.float32)
        image = np.clip(0.5 + self.contrast * (image - 0.5), 0.0, 1.0)
        return image * 255.0


# Per-episode fault probabilities.
P_DROP = {'camera': 0.15, 'tactile': 0.12, 'proprio': 0.05, 'environment': 0.15}
P_DEAD_TAXEL = 0.05
P_BIAS = 0.2
P_FROZEN = 0.08
P_LIGHT_SHIFT = 0.15
PRESSURE_FLOOR = 0.4             # [kPa] gauge noise at zero pressure


@dataclass
class Faults:
    """Sensor faults of one episode (or of a live run)."""

    dropped: dict = field(default_factory=lambda: dict.fromkeys(MODALITIES, False))
    dead_taxels: np.ndarray = field(default_factory=lambda: np.zeros(FIELD_TAXELS, bool))
    taxel_bias: np.ndarray = field(default_factory=lambda: np.zeros(FIELD_TAXELS))
    bend_bias: np.ndarray = field(default_factory=lambda: np.zeros(BEND_SENSORS))
    env_bias: np.ndarray = field(default_factory=lambda: np.zeros(4))
    frozen_from: dict = field(default_factory=dict)   # modality -> time [s] it freezes
    light_shift: Optional[tuple] = None               # (time [s], gain factor)

    @classmethod
    def sample(cls, rng: np.random.Generator, window: float) -> 'Faults':
        """Draw faults for one episode of length `window` seconds."""
        faults = cls()
        for name in MODALITIES:
            faults.dropped[name] = bool(rng.random() < P_DROP[name])
        if all(faults.dropped.values()):
            faults.dropped['proprio'] = False   # a robot that senses nothing is not a sample
        faults.dead_taxels = rng.random(FIELD_TAXELS) < P_DEAD_TAXEL
        if rng.random() < P_BIAS:
            faults.taxel_bias = rng.normal(0.0, 0.15, FIELD_TAXELS)
        if rng.random() < P_BIAS:
            faults.bend_bias = rng.normal(0.0, 0.05, BEND_SENSORS)
        if rng.random() < P_BIAS:
            faults.env_bias = rng.normal(0.0, 1.0, 4) * np.array([1.0, 0.05, 80.0, 0.5])
        for name in ('tactile', 'proprio', 'environment'):
            if rng.random() < P_FROZEN:
                faults.frozen_from[name] = float(rng.uniform(0.2, 0.9) * window)
        if rng.random() < P_LIGHT_SHIFT:
            faults.light_shift = (float(rng.uniform(0.2, 0.8) * window),
                                  float(rng.choice([0.5, 0.65, 1.4, 1.7])))
        return faults


def field_taxels(taxels: np.ndarray) -> np.ndarray:
    """Pool simulated taxels [T, 32] into the field strip's 8 larger taxels [T, 8] [N]."""
    return taxels.reshape(len(taxels), FIELD_TAXELS, TAXELS // FIELD_TAXELS).sum(axis=2)


def bend_angles(angles: np.ndarray) -> np.ndarray:
    """Total bending angle over each bend sensor's 5 hinges [T, 4] [rad] from [T, 20]."""
    return angles.reshape(len(angles), BEND_SENSORS, SEGMENTS // BEND_SENSORS).sum(axis=2)


def freeze(stamps: np.ndarray, values: np.ndarray, start: Optional[float]) -> np.ndarray:
    """Stuck sensor: every reading from `start` on repeats the last one before it."""
    if start is None:
        return values
    frozen = stamps >= start
    if frozen.any():
        before = np.flatnonzero(~frozen)
        values = values.copy()
        values[frozen] = values[before[-1]] if before.size else values[0]
    return values


def read_tactile(rng, taxels, noise: NoiseModel, faults: Faults) -> np.ndarray:
    """Field tactile readings [T, 8] [N] from simulated taxels [T, 32]; NaN = dead taxel."""
    out = field_taxels(taxels) + faults.taxel_bias + rng.normal(
        0.0, noise.taxel_sigma, (len(taxels), FIELD_TAXELS))
    out = np.clip(out, 0.0, noise.taxel_range_max)
    out[:, faults.dead_taxels] = np.nan
    return out


def read_bend(rng, angles, noise: NoiseModel, faults: Faults) -> np.ndarray:
    """Field bend-sensor readings [T, 4] [rad] from hinge angles [T, 20]."""
    return bend_angles(angles) + faults.bend_bias + rng.normal(
        0.0, noise.bend_sigma, (len(angles), BEND_SENSORS))


def read_achieved(rng, achieved, noise: NoiseModel) -> np.ndarray:
    """Pressure-gauge readings of the chambers [T, 2] [kPa]."""
    sigma = noise.achieved_sigma * np.abs(achieved) + PRESSURE_FLOOR
    return achieved + rng.normal(0.0, 1.0, achieved.shape) * sigma


def read_environment(rng, env, noise: NoiseModel, faults: Faults,
                     unsensed: Sequence[int] = ()) -> np.ndarray:
    """Environment readings [T, 4] from the true values [T, 4]; NaN in `unsensed` columns."""
    out = env + faults.env_bias + rng.normal(0.0, 1.0, env.shape) * np.asarray(noise.env_sigma)
    out[:, 1] = np.clip(out[:, 1], 0.0, 1.0)
    out[:, list(unsensed)] = np.nan
    return out


def camera_gain(rng, stamps: np.ndarray, noise: NoiseModel, faults: Faults) -> np.ndarray:
    """Per-frame brightness gain: flicker, times the lighting shift after it happens."""
    gain = 1.0 + rng.normal(0.0, noise.image_flicker, len(stamps))
    if faults.light_shift is not None:
        gain = np.where(stamps >= faults.light_shift[0], gain * faults.light_shift[1], gain)
    return gain


def degrade_frame(rng, frame: np.ndarray, gain: float, noise: NoiseModel,
                  optics: Optional[Optics] = None) -> np.ndarray:
    """Field camera frame (uint8 rgb8) from a rendered frame: optics, gain, noise, quantisation."""
    if optics is not None:
        frame = optics.apply(frame)
    image = frame.astype(np.float32) * (gain / 255.0)
    image += rng.normal(0.0, noise.image_sigma, image.shape).astype(np.float32)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def jittered_stamps(rng, nominal: np.ndarray, noise: NoiseModel) -> np.ndarray:
    """Acquisition stamps with clock jitter, kept ascending."""
    stamps = nominal + rng.normal(0.0, noise.stamp_jitter, len(nominal))
    return np.maximum.accumulate(stamps)


def kept_samples(rng, count: int, noise: NoiseModel) -> np.ndarray:
    """Mask of the 100 Hz samples that arrive (random loss plus at most one burst)."""
    keep = rng.random(count) >= noise.sample_loss
    if rng.random() < 0.1:
        start = rng.integers(0, count)
        keep[start:start + rng.integers(5, 30)] = False
    return keep
