"""
One dataset episode: a 2 s window of the arm at a sampled degradation state, in two views.

An episode samples a degradation state (balanced over fatigue levels and damage types), an
environment, a motion cycle and rendering conditions from a seeded generator, applies the
degradation as physics, simulates a warm-up and the window at a 5 ms step, and records the raw
streams. The teacher view bins the fault-free, high-rate, high-resolution streams; the field view
bins what the field robot's sensors would publish (sensors.py), exactly as the ingestion node
does with live messages: `resample.bin_to_steps` per modality and `image.resize_area` for the
camera. Values are in physical units; nothing is normalised.

An application profile (softmaint_sim.profiles) changes what is sampled (environment, motion,
light, its hidden drivers), the physics (rate gains, embrittlement, fouling), the field camera's
optics and noise, and leaves the environment quantities its robot does not sense as NaN in the
field view (the consumer reads them as "not sensed", like softmaint_core.window does).
"""
from dataclasses import dataclass, replace
import math
from typing import Dict, Optional, Tuple

import mujoco
import numpy as np
from softmaint_core.image import resize_area
from softmaint_core.resample import bin_to_steps
from softmaint_core.spec import FIELD_SPEC, MODALITIES, TEACHER_SPEC
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS

from . import degradation as dg
from . import profiles
from . import sensors
from .arm import Arm, FIELD_GEOMETRY, Look, SEGMENTS, SIM_GEOMETRY

GENERATOR_VERSION = '2.1.0'
WARMUP = 0.6                 # simulated seconds before the window (start-up transient)
WINDOW = TEACHER_SPEC.window
SENSOR_RATE = 100.0          # tactile and proprio sample rate [Hz]
TEACHER_CAMERA_RATE = 10.0
FIELD_CAMERA_RATE = 5.0
ENV_RATE = 1.0
AMPLITUDE = ((100.0, 200.0), (50.0, 115.0))   # peak chamber pressure ranges [kPa]
BASE_PRESSURE = 4.0          # pressure held in both chambers between strokes [kPa]
SUBTHRESHOLD_SHARE = 0.15    # damaged episodes sampled below the detectability threshold

PRIVILEGED_COLUMNS = tuple(
    [f'stiffness_{i}' for i in range(SEGMENTS)] + [
        'stiffness_fraction',    # fatigue label source: mean material stiffness fraction
        'damping_factor',        # hinge damping x nominal
        'leak_fraction',         # steady shortfall of the damaged chamber at 100 kPa [0, 1]
        'lag',                   # worst chamber time constant + dead time [s]
        'delamination_asymmetry',  # chamber moment loss on the delaminated side [0, 1]
        'crack_location',        # arc-length fraction of the crack (0 when none)
        'crack_severity',        # [0, 1]
        'damage_severity',       # severity of the episode's damage [0, 1]
        'damage_location',       # arc-length fraction of the damage site
        'damage_side',           # chamber / side affected (0, 1)
        'damage_effect',         # effect size in the unit of its detectability threshold
        'damage_detectable',     # 1 when the effect reaches the threshold (the label names it)
        'cycles',                # motion cycles since new
        'rul',                   # remaining useful life [cycles] (capped at 1e6)
        'fatigue_rate',          # stiffness loss per cycle
        'damage_rate',           # severity growth per cycle
        'env_acceleration',      # environmental acceleration factor of the rates
        'load_factor',           # load factor of the motion cycle
        'cycle_frequency',       # [Hz]
        'tip_x_mean', 'tip_z_mean', 'tip_pitch_mean',   # tip pose over the window [m, m, rad]
        'tip_x_range',           # peak-to-peak tip excursion [m]
        'tip_y_range',           # peak-to-peak sideways excursion (out of the x-z plane) [m]
        'contact_force_max',     # peak summed taxel force [N]
    ])


@dataclass
class EpisodeParams:
    """Everything sampled for one episode."""

    index: int
    domain: int                       # 0 sim, 1 field-shifted
    state: dg.Degradation
    env: dg.Environment
    env_drift: np.ndarray             # [4] per second
    frequency: float                  # motion cycle frequency [Hz]
    amplitude: Tuple[float, float]    # peak commanded pressure of each chamber [kPa]
    phase: float                      # [rad]
    look: Look
    faults: sensors.Faults
    profile: Optional[profiles.SimProfile] = None
    drivers: profiles.Drivers = profiles.Drivers()


def sample_params(rng: np.random.Generator, index: int, domain: int,
                  profile: Optional[profiles.SimProfile] = None) -> EpisodeParams:
    """Draw one episode's parameters, balanced over fatigue levels and damage types."""
    level = int(rng.integers(len(FATIGUE_LEVELS)))
    damage = int(rng.integers(len(DAMAGE_TYPES)))
    low, high = dg.fatigue_band(level)
    env = dg.Environment(temperature=float(rng.uniform(12.0, 40.0)),
                         humidity=float(rng.uniform(0.15, 0.95)),
                         co2=float(rng.uniform(400.0, 2000.0)),
                         pressure=float(rng.uniform(96.0, 104.0)))
    amplitude = (float(rng.uniform(*AMPLITUDE[0])), float(rng.uniform(*AMPLITUDE[1])))
    state = dg.Degradation(
        stiffness=float(rng.uniform(low, high)), damage=damage,
        severity=float(rng.uniform(severity_floor(damage), 0.95)) if damage else 0.0,
        location=float(rng.uniform(0.15, 0.9)), side=int(rng.integers(2)),
        rate_factor=float(np.exp(rng.normal(0.0, 0.3))))
    accel = dg.acceleration(env)
    load = dg.load_factor(max(amplitude))
    state.cycles = dg.cycles_to_soften(state.stiffness, accel, load, state.rate_factor)
    if domain:   # field site: dimmer, warmer light
        look = Look(light=float(rng.uniform(0.45, 1.0)), tint=(1.0, 0.9, 0.75),
                    light_offset=tuple(rng.normal(0.0, 0.15, 3)),
                    camera_offset=tuple(rng.normal(0.0, 0.015, 3)))
    else:
        look = Look(light=float(rng.uniform(0.7, 1.3)), tint=(1.0, 1.0, 1.0),
                    light_offset=tuple(rng.normal(0.0, 0.1, 3)),
                    camera_offset=tuple(rng.normal(0.0, 0.01, 3)))
    params = EpisodeParams(
        index=index, domain=domain, state=state, env=env,
        env_drift=rng.normal(0.0, 1.0, 4) * np.array([0.02, 0.002, 2.0, 0.005]),
        frequency=float(rng.uniform(0.4, 0.8)), amplitude=amplitude,
        phase=float(rng.uniform(0.0, 2 * math.pi)), look=look,
        faults=sensors.Faults.sample(rng, WINDOW))
    return params if profile is None else _in_workplace(rng, params, profile)


def _in_workplace(rng: np.random.Generator, params: EpisodeParams,
                  profile: profiles.SimProfile) -> EpisodeParams:
    """Re-draw what a profile changes: environment, motion, light, drivers; redo the physics."""
    env = dg.Environment(**{name: float(rng.uniform(*span))
                            for name, span in profile.environment.items()})
    amplitude = tuple(float(rng.uniform(*span)) for span in profile.amplitude)
    drivers = profiles.sample_drivers(rng, profile)
    state = params.state
    state.cycles = 0.0
    profiles.start(state, drivers, env)        # gains of a new arm in this workplace
    load = dg.load_factor(max(amplitude))
    state.cycles = dg.cycles_to_soften(state.stiffness, dg.acceleration(env), load,
                                       state.rate_factor, state.fatigue_gain)
    profiles.start(state, drivers, env)        # material state at that age
    look = replace(params.look, light=float(rng.uniform(*profile.light)),
                   tint=profile.look.tint, ambient=profile.look.ambient)
    drift = params.env_drift * np.array([1.0, 1.0, 1.0, env.pressure / 100.0])
    return replace(params, env=env, env_drift=drift, amplitude=amplitude, look=look,
                   frequency=float(rng.uniform(*profile.frequency)), profile=profile,
                   drivers=drivers)


def severity_floor(damage: int) -> float:
    """
    Return the lowest damage severity sampled for damage type `damage`.

    SUBTHRESHOLD_SHARE of the damaged episodes lie below the detectability threshold (labelled
    'none': a real arm has flaws no sensor sees yet).
    """
    detectable = dg.detectable_severity(damage)
    return max(0.02, detectable - SUBTHRESHOLD_SHARE * (0.95 - detectable)
               / (1.0 - SUBTHRESHOLD_SHARE))


def commands(times: np.ndarray, frequency: float, amplitude, phase: float) -> np.ndarray:
    """Chamber pressure commands [T, 2] [kPa] of the repeated motion cycle (half-wave each)."""
    wave = np.sin(2 * math.pi * frequency * times + phase)
    return np.stack([amplitude[0] * np.maximum(wave, 0.0) + BASE_PRESSURE,
                     amplitude[1] * np.maximum(-wave, 0.0) + BASE_PRESSURE], axis=1)


@dataclass
class Streams:
    """Raw, time-stamped recordings of one window (times relative to the window start)."""

    times: np.ndarray         # [S] sim-step times (200 Hz)
    angles: np.ndarray        # [S, 2N] bending angles, x-z plane then y-z plane [rad]
    taxels: np.ndarray        # [S, 32] touch forces [N]
    command: np.ndarray       # [S, 2] commanded chamber pressure [kPa]
    achieved: np.ndarray      # [S, 2] chamber pressure [kPa]
    tip: np.ndarray           # [S, 3] tip x, z, pitch
    tip_y: np.ndarray         # [S] tip position out of the x-z plane [m]
    teacher_times: np.ndarray
    teacher_frames: np.ndarray   # [F, 64, 64, 3] uint8
    field_times: np.ndarray
    field_frames: np.ndarray     # [G, 64, 64, 3] uint8 rendered with the field look


class EpisodeGenerator:
    """Simulates episodes; holds one compiled arm per domain (create one per process)."""

    def __init__(self, render: bool = True):
        self.arms = {0: Arm(SIM_GEOMETRY, render=render), 1: Arm(FIELD_GEOMETRY, render=render)}
        self.noise = {0: sensors.SIM_NOISE, 1: sensors.FIELD_NOISE}

    def close(self) -> None:
        """Release the renderers."""
        for arm in self.arms.values():
            arm.close()

    def simulate(self, params: EpisodeParams, rng: np.random.Generator,
                 render: bool = True) -> Tuple[Streams, dg.ChamberModel]:
        """Run warm-up and window; return the raw streams."""
        arm = self.arms[params.domain]
        physics, actuator = dg.apply(params.state, arm.geo)
        arm.apply(physics)
        arm.reset()
        dt = arm.model.opt.timestep
        n_warm = int(round(WARMUP / dt))
        n_win = int(round(WINDOW / dt))
        times = (np.arange(n_warm + n_win) - n_warm) * dt
        command = commands(times + WARMUP, params.frequency, params.amplitude, params.phase)
        achieved, _ = actuator.respond(command, dt)
        teacher_steps = n_warm + np.round(
            (np.arange(TEACHER_SPEC.modality('camera').steps) + 0.5)
            / TEACHER_CAMERA_RATE / dt).astype(int)
        field_phase = rng.uniform(0.0, 1.0 / FIELD_CAMERA_RATE)
        # floor, not round: a phase just under one camera period must not round past the window
        field_steps = n_warm + np.floor(
            (field_phase + np.arange(int(WINDOW * FIELD_CAMERA_RATE)) / FIELD_CAMERA_RATE)
            / dt).astype(int)
        teacher_set, field_set = set(teacher_steps.tolist()), set(field_steps.tolist())
        angles = np.empty((n_win, 2 * SEGMENTS))
        taxels = np.empty((n_win, arm.model.nsensordata))
        tip = np.empty((n_win, 3))
        tip_y = np.empty(n_win)
        teacher_frames, field_frames = [], []
        m, d = arm.model, arm.data
        ctrl = d.ctrl
        arm.set_look(params.look)
        for k in range(n_warm + n_win):
            if k >= n_warm:
                j = k - n_warm
                angles[j] = arm.bending()
                taxels[j] = d.sensordata
                tip[j] = arm.tip()
                tip_y[j] = d.site_xpos[arm.tip_site, 1]
                if render and k in teacher_set:
                    teacher_frames.append(arm.render())
                if render and k in field_set:
                    field_frames.append(arm.render())
            ctrl[:] = achieved[k]
            mujoco.mj_step(m, d)
        win = slice(n_warm, None)
        shape = (0, arm.height, arm.width, 3)
        return Streams(
            times=times[win], angles=angles, taxels=taxels, command=command[win],
            achieved=achieved[win], tip=tip, tip_y=tip_y,
            teacher_times=times[teacher_steps],
            teacher_frames=(np.array(teacher_frames) if teacher_frames
                            else np.zeros(shape, np.uint8)),
            field_times=times[field_steps],
            field_frames=np.array(field_frames) if field_frames else np.zeros(shape, np.uint8),
        ), actuator


def _bin(stamps, values, steps, reduce='mean'):
    return bin_to_steps(stamps, values, 0.0, WINDOW, steps, reduce)[0]


def _pairs(values: np.ndarray) -> np.ndarray:
    """200 Hz -> 100 Hz: mean of consecutive step pairs (a 10 ms integrating sensor)."""
    return values.reshape(len(values) // 2, 2, *values.shape[1:]).mean(axis=1)


def _camera_view(stamps, frames, steps, size) -> np.ndarray:
    """Frames uint8 [F, 64, 64, 3] -> view uint8 [steps, 3, size, size] ('last' per bin)."""
    if len(frames) == 0:
        return np.zeros((steps, 3, size, size), np.uint8)
    rgb = frames.astype(np.float32) / 255.0
    if frames.shape[1] != size:
        count = len(frames)   # resize all frames at once: channels of all frames stacked
        stacked = rgb.transpose(1, 2, 0, 3).reshape(frames.shape[1], frames.shape[2], -1)
        rgb = resize_area(stacked, size, size).reshape(size, size, count, 3).transpose(2, 0, 1, 3)
    binned = _bin(stamps, rgb, steps, reduce='last')
    return np.rint(binned * 255.0).clip(0, 255).astype(np.uint8).transpose(0, 3, 1, 2)


def environment_truth(params: EpisodeParams, times: np.ndarray) -> np.ndarray:
    """Return the true environment [T, 4] at window times `times` (linear drift)."""
    return params.env.as_array()[None, :] + times[:, None] * params.env_drift[None, :]


def teacher_view(params: EpisodeParams, streams: Streams) -> Dict[str, np.ndarray]:
    """Teacher arrays: fault-free, all joints, 32 taxels, 64x64 camera at 10 Hz."""
    spec = TEACHER_SPEC
    t100 = streams.times[::2]
    proprio = np.concatenate([_pairs(streams.angles), _pairs(streams.command),
                              _pairs(streams.achieved)], axis=1)
    env_t = np.arange(int(WINDOW * ENV_RATE)) / ENV_RATE + 0.5 / ENV_RATE
    size = spec.modality('camera').features[1]
    return {
        'camera': _camera_view(streams.teacher_times, streams.teacher_frames,
                               spec.modality('camera').steps, size),
        'tactile': _bin(t100, _pairs(streams.taxels), spec.modality('tactile').steps),
        'proprio': _bin(t100, proprio, spec.modality('proprio').steps),
        'environment': _bin(env_t, environment_truth(params, env_t),
                            spec.modality('environment').steps),
    }


def field_samples(params: EpisodeParams, streams: Streams, rng: np.random.Generator,
                  noise: sensors.NoiseModel) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """
    Return what the field robot publishes: modality -> (stamps [s], values), like live messages.

    camera: rgb8 frames [G, 64, 64, 3]; tactile [T, 8] (NaN = dead taxel); proprio [T, 8]
    (4 bend angles, 2 commands, 2 achieved); environment [E, 4]. Dropped modalities are absent.
    """
    faults = params.faults
    out = {}
    t100 = streams.times[::2]
    taxels = sensors.read_tactile(rng, _pairs(streams.taxels), noise, faults)
    bend = sensors.read_bend(rng, _pairs(streams.angles[:, :SEGMENTS]), noise, faults)
    achieved = sensors.read_achieved(rng, _pairs(streams.achieved), noise)
    proprio = np.concatenate([bend, _pairs(streams.command), achieved], axis=1)
    for name, values in (('tactile', taxels), ('proprio', proprio)):
        keep = sensors.kept_samples(rng, len(t100), noise)
        stamps = sensors.jittered_stamps(rng, t100, noise)[keep]
        values = sensors.freeze(stamps, values[keep], faults.frozen_from.get(name))
        out[name] = (stamps, values)
    env_t = rng.uniform(0.0, 1.0 / ENV_RATE) + np.arange(int(WINDOW * ENV_RATE)) / ENV_RATE
    unsensed = params.profile.unsensed_columns if params.profile else ()
    env = sensors.read_environment(rng, environment_truth(params, env_t), noise, faults,
                                   unsensed)
    out['environment'] = (env_t, sensors.freeze(env_t, env, faults.frozen_from.get(
        'environment')))
    gains = sensors.camera_gain(rng, streams.field_times, noise, faults)
    optics = params.profile.optics if params.profile else None
    frames = np.array([sensors.degrade_frame(rng, f, g, noise, optics)
                       for f, g in zip(streams.field_frames, gains)])
    out['camera'] = (sensors.jittered_stamps(rng, streams.field_times, noise), frames)
    return {name: value for name, value in out.items() if not faults.dropped[name]}


def field_view(samples) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """
    Bin field samples like the ingestion node: arrays per modality and the availability mask.

    Dead taxels (NaN) are read as 0 N; an unsensed environment quantity stays NaN (a profile's
    robot without that sensor); a dropped modality is all zeros with mask False.
    """
    spec = FIELD_SPEC
    arrays, mask = {}, np.zeros(len(MODALITIES), bool)
    for i, name in enumerate(MODALITIES):
        mod = spec.modality(name)
        if name not in samples:
            arrays[name] = np.zeros(mod.shape, np.uint8 if name == 'camera' else np.float32)
            continue
        mask[i] = True
        stamps, values = samples[name]
        if name == 'camera':
            arrays[name] = _camera_view(stamps, values, mod.steps, mod.features[1])
        else:
            arrays[name] = _bin(stamps, values if name == 'environment' else
                                np.nan_to_num(values, nan=0.0), mod.steps)
    return arrays, mask


def privileged(params: EpisodeParams, streams: Streams, actuator: dg.ChamberModel,
               labels: dict, accel: float, load: float, geo) -> np.ndarray:
    """Privileged physics vector in PRIVILEGED_COLUMNS order."""
    state = params.state
    physics, _ = dg.apply(state, geo)
    name = state.damage_name
    crack = name == 'crack_tear'
    site = state.damages()[0] if state.damage else None
    values = list(physics.stiffness) + [
        state.stiffness, float(physics.damping[0]),
        actuator.shortfall(state.side), actuator.lag,
        float(1.0 - physics.arms.min()),
        state.location if crack else 0.0, state.severity if crack else 0.0,
        state.severity, state.location if state.damage else 0.0,
        float(state.side) if state.damage else 0.0,
        dg.effect(site, geo) if site else 0.0,
        float(dg.detectable(site, geo)) if site else 0.0,
        state.cycles, min(labels['rul'], 1e6), state.fatigue_rate(accel, load),
        state.damage_rate(accel, load), accel, load, params.frequency,
        *streams.tip.mean(axis=0), float(np.ptp(streams.tip[:, 0])),
        float(np.ptp(streams.tip_y)),
        float(streams.taxels.sum(axis=1).max()),
    ]
    return np.asarray(values, dtype=np.float32)


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """Return the generator of episode `index` of a dataset with `seed` (any sharding)."""
    return np.random.default_rng([int(seed), int(index)])


def episode_domain(seed: int, index: int, field_fraction: float) -> int:
    """Domain of episode `index`: 1 (field-shifted) for a seeded `field_fraction` of episodes."""
    return int(np.random.default_rng([int(seed), int(index), 1]).random() < field_fraction)


def generate(gen: EpisodeGenerator, seed: int, index: int, field_fraction: float,
             render: bool = True,
             profile: Optional[profiles.SimProfile] = None) -> Dict[str, np.ndarray]:
    """
    One episode as dataset rows (no batch axis): views, labels, privileged state.

    render=False leaves the camera views black (for benchmarks of the physics alone).
    """
    rng = episode_rng(seed, index)
    domain = episode_domain(seed, index, field_fraction)
    params = sample_params(rng, index, domain, profile)
    streams, actuator = gen.simulate(params, rng, render=render)
    accel = dg.acceleration(params.env)
    load = dg.load_factor(max(params.amplitude))
    geo = gen.arms[domain].geo
    labels = params.state.labels(accel, load, geo)
    row = {f'teacher_{k}': v for k, v in teacher_view(params, streams).items()}
    noise = profile.noise if profile is not None and domain else gen.noise[domain]
    field, mask = field_view(field_samples(params, streams, rng, noise))
    row.update({f'field_{k}': v for k, v in field.items()})
    row.update({
        'fatigue': np.int64(labels['fatigue']), 'damage': np.int64(labels['damage']),
        'urgency': np.float32(labels['urgency']),
        'privileged': privileged(params, streams, actuator, labels, accel, load, geo),
        'domain': np.int64(domain), 'lighting': np.float32(params.look.light),
        'episode': np.int64(index), 'field_mask': mask,
    })
    return row
