"""
The live simulated robot without ROS: steps the arm through a scenario, 10 ms at a time.

Each call to `LiveSim.step()` advances the physics by one 100 Hz sensor period (two 5 ms steps)
and returns the readings acquired in it, with their acquisition time (seconds since start):
tactile and proprio every period, a camera frame at `camera_rate`, environment and ground truth
at 1 Hz. Degradation advances with the motion cycles (times the scenario's wear acceleration)
and is re-applied to the physics every 0.1 s. The sensor models are those of the dataset's field
view (sensors.py), so a student trained on the dataset sees the same sensors live. The camera is
rendered only when a frame is due, which keeps a live step at ~0.2 ms of CPU.
"""
from dataclasses import dataclass, replace
import math
from typing import Dict, List, Optional

import numpy as np

from . import degradation as dg
from . import sensors
from .arm import Arm, BEND_SENSORS, FIELD_GEOMETRY, FIELD_TAXELS, Look, SIM_GEOMETRY
from .episode import commands
from .scenario import Event, Scenario

SAMPLE_PERIOD = 0.01
PHYSICS_UPDATE = 0.1     # re-apply degradation to the physics this often [s]


@dataclass
class Reading:
    """One sensor reading: `kind` in camera, tactile, proprio, environment, truth."""

    kind: str
    stamp: float             # acquisition time [s since start]
    data: dict


class LiveSim:
    """Scenario-driven arm with field sensors."""

    def __init__(self, scenario: Scenario, camera_size: int = 64, camera_rate: float = 5.0,
                 render: bool = True):
        self.scenario = scenario
        geometry = FIELD_GEOMETRY if scenario.domain == 'field' else SIM_GEOMETRY
        self.arm = Arm(geometry, camera_size, camera_size, render=render)
        self.noise = sensors.FIELD_NOISE if scenario.domain == 'field' else sensors.SIM_NOISE
        self.rng = np.random.default_rng(scenario.seed)
        self.state = dg.Degradation(cycles=scenario.cycles, stiffness=scenario.stiffness)
        self.env = dict(scenario.environment)
        self.pending: List[Event] = list(scenario.events)
        self.active: List[Event] = []
        self.time = 0.0
        self.camera_period = 1.0 / camera_rate
        self.next_camera = 0.0
        self.next_env = 0.0
        self.next_truth = 0.0
        self.next_physics = 0.0
        self.last: Dict[str, dict] = {}
        self.render = render
        self.arm.reset()
        self.arm.set_look(Look(light=0.8, tint=(1.0, 0.95, 0.85)) if scenario.domain == 'field'
                          else Look())
        self._apply_physics()
        self.actuator_state = None

    @property
    def load(self) -> float:
        """Load factor of the motion cycle."""
        return dg.load_factor(max(self.scenario.amplitude))

    def environment(self) -> dg.Environment:
        """Current true environment."""
        return dg.Environment(**self.env)

    def _apply_physics(self) -> None:
        physics, self.actuator = dg.apply(self.state)
        self.arm.apply(physics)

    def _faults(self) -> sensors.Faults:
        faults = sensors.Faults()
        for ev in self.active:
            kind, mod = ev.sensor_fault, ev.modality
            if kind == 'dropout':
                faults.dropped[mod] = True
            elif kind == 'frozen':
                faults.frozen_from[mod] = ev.at
            elif kind == 'bias':
                if mod == 'tactile':
                    faults.taxel_bias = faults.taxel_bias + ev.value
                elif mod == 'proprio':
                    faults.bend_bias = faults.bend_bias + ev.value
                elif mod == 'environment':
                    faults.env_bias = faults.env_bias + ev.value
            elif kind == 'dead_taxels':
                faults.dead_taxels[list(ev.taxels or range(FIELD_TAXELS))] = True
            elif kind == 'lighting':
                faults.light_shift = (ev.at, ev.value if ev.value > 0 else 0.5)
        return faults

    def _events(self) -> None:
        while self.pending and self.pending[0].at <= self.time:
            ev = self.pending.pop(0)
            if ev.damage:
                self.state.add_damage(dg.Damage(dg.DAMAGE_TYPES.index(ev.damage), ev.severity,
                                                ev.location, ev.side))
                self._apply_physics()
            elif ev.environment:
                self.env.update(ev.environment)
            else:
                self.active.append(ev)
        self.active = [ev for ev in self.active if self.time < ev.at + ev.duration]

    def _noise(self) -> sensors.NoiseModel:
        noise = self.noise
        for ev in self.active:
            if ev.sensor_fault == 'saturation':
                noise = replace(noise, taxel_range_max=ev.value if ev.value > 0 else 1.0)
        return noise

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
        self._events()
        faults, noise = self._faults(), self._noise()
        readings = []
        t = self.time
        env = self.environment()
        accel = dg.acceleration(env)
        rng = self.rng
        if self.render and t >= self.next_camera - 1e-9:
            self.next_camera += self.camera_period
            gain = sensors.camera_gain(rng, np.array([t]), noise, faults)[0]
            frame = sensors.degrade_frame(rng, self.arm.render(), gain, noise)
            data = self._publishable('camera', faults, {'image': frame})
            if data is not None:
                readings.append(Reading('camera', t, data))
        dt = self.arm.model.opt.timestep
        steps = int(round(SAMPLE_PERIOD / dt))
        times = t + np.arange(steps) * dt
        cmd = commands(times, self.scenario.frequency, self.scenario.amplitude, 0.0)
        achieved, self.actuator_state = self.actuator.respond(cmd, dt, self.actuator_state)
        angles, taxels = np.zeros(len(self.arm.qadr)), np.zeros(self.arm.model.nsensordata)
        for k in range(steps):
            angles += self.arm.angles()
            taxels += self.arm.data.sensordata
            self.arm.data.ctrl[:] = achieved[k]
            self.arm.step()
        angles, taxels = angles / steps, taxels / steps
        tactile = sensors.read_tactile(rng, taxels[None], noise, faults)[0]
        bend = sensors.read_bend(rng, angles[None], noise, faults)[0]
        load_cell = sensors.read_achieved(rng, achieved.mean(axis=0)[None], noise)[0]
        for kind, data in (('tactile', {'taxels': tactile}),
                           ('proprio', {'bend': bend, 'command': cmd.mean(axis=0),
                                        'achieved': load_cell})):
            data = self._publishable(kind, faults, data)
            if data is not None:
                readings.append(Reading(kind, t, data))
        if t >= self.next_env - 1e-9:
            self.next_env += 1.0
            reading = sensors.read_environment(rng, env.as_array()[None], noise, faults)[0]
            data = self._publishable('environment', faults, {'values': reading})
            if data is not None:
                readings.append(Reading('environment', t, data))
        if t >= self.next_truth - 1e-9:
            self.next_truth += 1.0
            readings.append(Reading('truth', t, self.truth(accel)))
        # wear: motion cycles of this period, compressed by the scenario's acceleration
        self.state.advance(self.scenario.frequency * SAMPLE_PERIOD
                           * self.scenario.wear_acceleration, accel, self.load)
        for key, rate in self.scenario.drift.items():
            self.env[key] += rate * SAMPLE_PERIOD
        self.env['humidity'] = min(1.0, max(0.0, self.env['humidity']))
        self.time = t + steps * dt
        if self.time >= self.next_physics:
            self.next_physics += PHYSICS_UPDATE
            self._apply_physics()
        return readings

    def truth(self, accel: Optional[float] = None) -> dict:
        """Ground truth (GroundTruth message fields)."""
        accel = dg.acceleration(self.environment()) if accel is None else accel
        labels = self.state.labels(accel, self.load)
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


__all__ = ['BEND_SENSORS', 'LiveSim', 'Reading']
