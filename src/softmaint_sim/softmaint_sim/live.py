"""
The live simulated robot without ROS: steps the arm through a scenario, 10 ms at a time.

Each call to `LiveSim.step()` advances the physics by one 100 Hz sensor period (two 5 ms steps)
and returns the readings acquired in it, with their acquisition time (seconds since start):
tactile and proprio every period, a camera frame at `camera_rate`, environment and ground truth
at 1 Hz, and every scenario event when it fires (followed by fresh ground truth when it changed
the arm or its environment). Degradation advances with the motion cycles (times the scenario's
wear acceleration) and is re-applied to the physics every 0.1 s. The sensor models are those of
the dataset's field view (sensors.py), so a student trained on the dataset sees the same sensors
live. The camera is rendered only when a frame is due. A scenario's application profile
(softmaint_sim.profiles) sets the scene, the camera optics, the field sensors' noise, the
environment quantities reported as NaN (not sensed) and the extra degradation drivers.

`Pacer` maps simulated time onto a wall clock at a rate factor that may change while running.
"""
from dataclasses import dataclass, replace
import math
from typing import Dict, List, Optional

import numpy as np
from softmaint_core.spec import ENVIRONMENT_FIELDS

from . import degradation as dg
from . import profiles
from . import sensors
from .arm import Arm, FIELD_GEOMETRY, FIELD_TAXELS, Look, SIM_GEOMETRY
from .episode import commands
from .scenario import describe, Event, Scenario

SAMPLE_PERIOD = 0.01     # sensor period [s]: tactile and proprio at 100 Hz
SLOW_PERIOD = 1.0        # environment and ground-truth period [s]
PHYSICS_UPDATE = 0.1     # re-apply degradation to the physics this often [s]
FORCE_UNITS = 'N'        # tactile
FIELD_LOOK = Look(light=0.8, tint=(1.0, 0.95, 0.85))


@dataclass
class Reading:
    """One reading: `kind` in camera, tactile, proprio, environment, truth, event."""

    kind: str
    stamp: float             # acquisition time [s since start]
    data: dict


def taxel_pitch(scenario: Scenario) -> float:
    """Return the taxel pitch of the field strip on the scenario's arm [m]."""
    return geometry(scenario).length / FIELD_TAXELS


def geometry(scenario: Scenario):
    """Return the arm geometry of the scenario's domain."""
    return FIELD_GEOMETRY if scenario.domain == 'field' else SIM_GEOMETRY


class LiveSim:
    """Scenario-driven arm with field sensors."""

    def __init__(self, scenario: Scenario, camera_size: int = 64, camera_rate: float = 5.0,
                 render: bool = True):
        if camera_rate <= 0 or camera_rate > 1.0 / SAMPLE_PERIOD:
            raise ValueError(f'camera_rate must be in (0, {1.0 / SAMPLE_PERIOD:g}] Hz, '
                             f'got {camera_rate}')
        self.scenario = scenario
        self.profile = profiles.sim_profile(scenario.profile)
        self.arm = Arm(geometry(scenario), camera_size, camera_size, render=render)
        self.noise = sensors.FIELD_NOISE if scenario.domain == 'field' else sensors.SIM_NOISE
        if self.profile is not None and scenario.domain == 'field':
            self.noise = self.profile.noise
        self.rng = np.random.default_rng(scenario.seed)
        self.state = dg.Degradation(cycles=scenario.cycles, stiffness=scenario.stiffness)
        self.env = dict(scenario.environment)
        if self.profile is not None:
            profiles.start(self.state, self.profile.drivers, self.environment())
        self.pending: List[Event] = list(scenario.events)
        self.active: List[Event] = []
        self.periods = 0             # sensor periods done; time = periods * SAMPLE_PERIOD
        self.camera_period = 1.0 / camera_rate
        self.frames = 0              # camera frames due so far (published or not)
        self.last: Dict[str, dict] = {}
        self.render = render
        self.actuator_state = None
        self.stopped_at: Optional[float] = None     # emergency stop [s of sim time]
        self.arm.reset()
        self.arm.set_look(self.profile.look if self.profile is not None else
                          FIELD_LOOK if scenario.domain == 'field' else Look())
        self._apply_physics()

    @property
    def time(self) -> float:
        """Return the simulated time since start [s]."""
        return self.periods * SAMPLE_PERIOD

    @property
    def load(self) -> float:
        """Return the load factor of the motion cycle."""
        return dg.load_factor(max(self.scenario.amplitude))

    @property
    def range_max(self) -> float:
        """Return the saturation of one field taxel [N] (a saturation fault lowers it)."""
        return self._noise().taxel_range_max

    def environment(self) -> dg.Environment:
        """Return the true environment now."""
        return dg.Environment(**self.env)

    def emergency_stop(self) -> None:
        """Stop the motion: both chambers held at base pressure, no more wear cycles."""
        if self.stopped_at is None:
            self.stopped_at = self.time

    def _apply_physics(self) -> None:
        physics, self.actuator = dg.apply(self.state, self.arm.geo)
        self.arm.apply(physics)

    def _faults(self) -> sensors.Faults:
        faults = sensors.Faults()
        for ev in self.active:
            kind, mod = ev.sensor_fault, ev.modality
            if kind == 'dropout':
                faults.dropped[mod] = True
            elif kind == 'frozen':
                faults.frozen_from[mod] = ev.at
            elif kind == 'bias' and mod == 'tactile':
                faults.taxel_bias = faults.taxel_bias + ev.value
            elif kind == 'bias' and mod == 'proprio':
                faults.bend_bias = faults.bend_bias + ev.value
            elif kind == 'bias':
                faults.env_bias = faults.env_bias.copy()
                faults.env_bias[ENVIRONMENT_FIELDS.index(ev.quantity)] += ev.value
            elif kind == 'dead_taxels':
                faults.dead_taxels[list(ev.taxels or range(FIELD_TAXELS))] = True
            elif kind == 'lighting':
                faults.light_shift = (ev.at, ev.value)
        return faults

    def _noise(self) -> sensors.NoiseModel:
        noise = self.noise
        for ev in self.active:
            if ev.sensor_fault == 'saturation':
                noise = replace(noise, taxel_range_max=min(noise.taxel_range_max, ev.value))
        return noise

    def _events(self, t: float) -> List[Reading]:
        """Fire the events due at `t`; end sensor faults whose duration is over."""
        fired = []
        changed = False
        while self.pending and self.pending[0].at <= t + 1e-9:
            ev = self.pending.pop(0)
            if ev.damage:
                self.state.add_damage(dg.Damage(dg.DAMAGE_TYPES.index(ev.damage), ev.severity,
                                                ev.location, ev.side))
                self._apply_physics()
                changed = True
            elif ev.environment:
                self.env.update(ev.environment)
                if self.profile is not None:
                    profiles.update(self.state, self.profile.drivers, self.environment())
                changed = True
            else:
                self.active.append(ev)
            fired.append(Reading('event', t, {'event': ev, 'text': describe(ev)}))
        self.active = [ev for ev in self.active if t < ev.at + ev.duration - 1e-9]
        if changed and not self._slow_due():   # else the periodic truth follows anyway
            fired.append(Reading('truth', t, self.truth()))
        return fired

    def _slow_due(self) -> bool:
        """Whether environment and ground truth are due in this sensor period."""
        return self.periods % round(SLOW_PERIOD / SAMPLE_PERIOD) == 0

    def _publishable(self, kind: str, faults: sensors.Faults, data: dict) -> Optional[dict]:
        """Apply dropout and frozen faults; None when the reading is not published."""
        if faults.dropped.get(kind):
            return None
        if kind in faults.frozen_from and kind in self.last:
            return self.last[kind]
        self.last[kind] = data
        return data

    def step(self) -> List[Reading]:
        """Advance one 10 ms sensor period; return the readings acquired in it."""
        t = self.time
        readings = self._events(t)
        faults, noise, rng = self._faults(), self._noise(), self.rng
        # frame k is due at k * camera_period: take it in the sensor period that contains that time
        if self.render and self.frames * self.camera_period < t + SAMPLE_PERIOD - 1e-9:
            self.frames += 1
            gain = sensors.camera_gain(rng, np.array([t]), noise, faults)[0]
            optics = self.profile.optics if self.profile is not None else None
            frame = sensors.degrade_frame(rng, self.arm.render(), gain, noise, optics)
            readings.append(Reading('camera', t, {'image': frame}))
        env = self.environment()
        accel = dg.acceleration(env)
        readings += self._simulate_period(t, faults, noise)
        if self._slow_due():
            unsensed = self.profile.unsensed_columns if self.profile is not None else ()
            values = sensors.read_environment(rng, env.as_array()[None], noise, faults,
                                              unsensed)[0]
            readings.append(Reading('environment', t, {'values': values}))
            readings.append(Reading('truth', t, self.truth(accel)))
        readings = [r for r in readings if r.kind in ('truth', 'event') or self._keep(r, faults)]
        self._wear(accel)
        self.periods += 1
        if self.periods % round(PHYSICS_UPDATE / SAMPLE_PERIOD) == 0:
            self._apply_physics()
        return readings

    def _keep(self, reading: Reading, faults: sensors.Faults) -> bool:
        data = self._publishable(reading.kind, faults, reading.data)
        if data is not None:
            reading.data = data
        return data is not None

    def _simulate_period(self, t: float, faults, noise) -> List[Reading]:
        """Two physics steps with the actuator response; tactile and proprio readings."""
        dt = self.arm.model.opt.timestep
        steps = int(round(SAMPLE_PERIOD / dt))
        amplitude = (0.0, 0.0) if self.stopped_at is not None else self.scenario.amplitude
        cmd = commands(t + np.arange(steps) * dt, self.scenario.frequency, amplitude, 0.0)
        achieved, self.actuator_state = self.actuator.respond(cmd, dt, self.actuator_state)
        angles, taxels = np.zeros(len(self.arm.qadr)), np.zeros(self.arm.model.nsensordata)
        for k in range(steps):
            angles += self.arm.angles()
            taxels += self.arm.data.sensordata
            self.arm.data.ctrl[:] = achieved[k]
            self.arm.step()
        angles, taxels = angles / steps, taxels / steps
        rng = self.rng
        tactile = sensors.read_tactile(rng, taxels[None], noise, faults)[0]
        bend = sensors.read_bend(rng, angles[None], noise, faults)[0]
        gauge = sensors.read_achieved(rng, achieved.mean(axis=0)[None], noise)[0]
        return [Reading('tactile', t, {'taxels': tactile}),
                Reading('proprio', t, {'bend': bend, 'command': cmd.mean(axis=0),
                                       'achieved': gauge})]

    def _wear(self, accel: float) -> None:
        """Motion cycles of one period, compressed by the wear acceleration; drift."""
        # Failure is terminal: the labels stay those of the failure that happened first. A
        # stopped arm makes no motion cycles.
        if self.stopped_at is None and self.state.rul(accel, self.load) > 0:
            cycles = (self.scenario.frequency * SAMPLE_PERIOD
                      * self.scenario.wear_acceleration)
            self.state.advance(cycles, accel, self.load)
            if self.profile is not None:
                profiles.wear(self.state, self.profile.drivers, self.environment(), cycles)
        for key, rate in self.scenario.drift.items():
            self.env[key] += rate * SAMPLE_PERIOD
        self.env['humidity'] = min(1.0, max(0.0, self.env['humidity']))

    def truth(self, accel: Optional[float] = None) -> dict:
        """Return the labels of the current state, as GroundTruth message fields."""
        accel = dg.acceleration(self.environment()) if accel is None else accel
        labels = self.state.labels(accel, self.load, self.arm.geo)
        rul = labels['rul']
        return {'fatigue_level': labels['fatigue'], 'damage_type': labels['damage'],
                'damage_name': dg.DAMAGE_TYPES[labels['damage']],
                'damage_severity': labels['severity'], 'urgency': labels['urgency'],
                'stiffness_fraction': max(0.0, min(1.0, self.state.stiffness)),
                'remaining_useful_life': rul if math.isfinite(rul) else 1e9,
                'cycles': self.state.cycles}

    def close(self) -> None:
        """Release the renderer."""
        self.arm.close()


def timeline(scenario: Scenario, until: float, every: float = 5.0) -> List[Reading]:
    """Ground truth every `every` s and every event up to `until` s (fast: no rendering)."""
    sim = LiveSim(scenario, render=False)
    try:
        out = []
        while sim.time < until - 1e-9:
            for reading in sim.step():
                periodic = reading.kind == 'truth' and round(reading.stamp * 100) % round(
                    every * 100) == 0
                if reading.kind == 'event' or periodic:
                    out.append(reading)
        return out
    finally:
        sim.close()


def main(argv=None) -> int:
    """Print a scenario's ground-truth timeline: python -m softmaint_sim.live NAME [SECONDS]."""
    import argparse
    from .scenario import load, ScenarioError
    parser = argparse.ArgumentParser(prog='python -m softmaint_sim.live',
                                     description=main.__doc__.split(':')[0])
    parser.add_argument('scenario', help='scenario name or .yaml path')
    parser.add_argument('seconds', type=float, nargs='?', default=90.0)
    parser.add_argument('--every', type=float, default=5.0, help='truth period [s]')
    args = parser.parse_args(argv)
    try:
        scenario = load(args.scenario)
    except ScenarioError as err:
        parser.exit(2, f'error: {err}\n')
    for r in timeline(scenario, args.seconds, args.every):
        if r.kind == 'event':
            print(f'{r.stamp:7.1f} s  event: {r.data["text"]}')
            continue
        d = r.data
        print(f'{r.stamp:7.1f} s  fatigue {d["fatigue_level"]}  {d["damage_name"]:<18} '
              f'severity {d["damage_severity"]:.2f}  urgency {d["urgency"]:.2f}  '
              f'stiffness {d["stiffness_fraction"]:.3f}  RUL {d["remaining_useful_life"]:.0f}')
    return 0


class Pacer:
    """
    Maps simulated time onto a steady wall clock at a rate factor (sim seconds per wall second).

    A rate change re-anchors at the current simulated time, so it neither bursts nor stalls.
    """

    def __init__(self, rate: float, wall: float, sim: float = 0.0):
        self.rate, self.wall0, self.sim0 = rate, wall, sim

    def set_rate(self, rate: float, wall: float, sim: float) -> None:
        """Continue from simulated time `sim` at wall time `wall` with the new rate."""
        self.rate, self.wall0, self.sim0 = rate, wall, sim

    def due(self, wall: float) -> float:
        """Return the simulated time that should have been reached at wall time `wall`."""
        return self.sim0 + (wall - self.wall0) * self.rate

    def wall(self, sim: float) -> float:
        """Return the wall time at which simulated time `sim` is due."""
        return self.wall0 + (sim - self.sim0) / self.rate


__all__ = ['FORCE_UNITS', 'LiveSim', 'Pacer', 'Reading', 'taxel_pitch', 'timeline']

if __name__ == '__main__':
    raise SystemExit(main())
