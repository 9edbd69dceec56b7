"""
softmaint-sim-fidelity: the reduced-order MuJoCo arm against a Cosserat rod (PyElastica).

    softmaint-sim-fidelity [--json fidelity.json] [--cases NAME ...]

For a few configurations (geometry, stiffness, gravity, load) both models are clamped at the
base and loaded at the tip by a horizontal dead load that ramps up and is then held under heavy
damping until static: the tip deflection is the static result. The load and the damping are
then removed, and the free vibration that follows gives the first bending frequency (from the
tip's zero crossings). Without gravity, Euler-Bernoulli beam theory is printed as a third
reference: delta = F L^3 / (3 E I), f1 = 1.875^2 / (2 pi) sqrt(E I / (rho A L^4)).

The rod reference is run with 30 and 60 elements (0.1 ms step; 0.2 ms diverges) and
Richardson-extrapolated to infinitely many, x = 2 x_60 - x_30: a clamped rod of n elements is
stiffer than the continuum by ~1.5 / n (its first element cannot bend), 5 % at 30 elements.
The first run compiles PyElastica's numba kernels for ~30 s. Contact is off in both models (the
post is not part of the check).
"""
import argparse
from dataclasses import asdict, dataclass, replace
import json
import math
from pathlib import Path
import sys
import time
from typing import List, Optional, Tuple

import mujoco
import numpy as np

from .arm import Arm, ArmGeometry, FIELD_GEOMETRY, Physics, SIM_GEOMETRY

ROD_ELEMENTS = (30, 60)    # two resolutions for the Richardson extrapolation
ROD_DT = 1.0e-4
RAMP = 0.3                 # load ramp [s]
HOLD = 2.0                 # rod: time to static under damping [s]
SETTLE_RATE = 10.0         # velocity damping rate while settling [1/s]
FREE_PERIODS = 2.5         # periods of free vibration recorded after release
SAMPLE_EVERY = 1.0e-3      # tip sampling period [s]
POISSON = 0.5              # elastomer: incompressible


@dataclass(frozen=True)
class Case:
    """One configuration compared."""

    name: str
    geometry: ArmGeometry
    load: float                # horizontal tip load [N]
    gravity: bool = True
    stiffness: float = 1.0     # uniform stiffness fraction (a fatigued arm)

    @property
    def material(self) -> ArmGeometry:
        """Geometry with the effective Young's modulus of this case."""
        return replace(self.geometry,
                       youngs_modulus=self.geometry.youngs_modulus * self.stiffness)


CASES = (
    Case('sim-nograv-small', SIM_GEOMETRY, load=0.05, gravity=False),
    Case('sim-nograv-large', SIM_GEOMETRY, load=0.4, gravity=False),
    Case('sim-hanging', SIM_GEOMETRY, load=0.2),
    Case('sim-softened-0.6', SIM_GEOMETRY, load=0.2, stiffness=0.6),
    Case('field-hanging', FIELD_GEOMETRY, load=0.2),
)


@dataclass
class Response:
    """Static tip deflection [m] and first bending frequency [Hz] of one model."""

    deflection: float
    frequency: float
    seconds: float = 0.0       # CPU time of the run


def beam_theory(case: Case) -> Optional[Response]:
    """Euler-Bernoulli cantilever (small deflection, no gravity); None with gravity."""
    if case.gravity:
        return None
    geo = case.material
    ei = geo.bending_stiffness
    mass_per_length = geo.density * math.pi * geo.radius ** 2
    return Response(deflection=case.load * geo.length ** 3 / (3.0 * ei),
                    frequency=1.875 ** 2 / (2 * math.pi) * math.sqrt(
                        ei / (mass_per_length * geo.length ** 4)))


def first_frequency(times: np.ndarray, tip_x: np.ndarray) -> float:
    """Frequency [Hz] from the upward zero crossings of the tip's free vibration."""
    x = tip_x - 0.5 * (tip_x.max() + tip_x.min())
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    if len(up) < 2:
        return float('nan')
    crossings = times[up] - x[up] * (times[up + 1] - times[up]) / (x[up + 1] - x[up])
    return float((len(crossings) - 1) / (crossings[-1] - crossings[0]))


def free_time(case: Case) -> float:
    """Seconds of free vibration to record (long enough for the slowest case)."""
    reference = beam_theory(replace(case, gravity=False))
    return FREE_PERIODS / reference.frequency


def run_mujoco(case: Case) -> Response:
    """Measure static deflection and free vibration of the reduced-order arm."""
    start = time.process_time()
    arm = Arm(case.geometry, render=False)
    m, d = arm.model, arm.data
    physics = Physics.healthy()
    physics.stiffness[:] = case.stiffness
    arm.apply(physics)
    m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.gravity[:] = (0.0, 0.0, -9.81 if case.gravity else 0.0)
    nominal_damping = m.dof_damping.copy()
    # settle: damping with a 0.2 s retardation time (well damped, static result unchanged)
    m.dof_damping[:] = m.jnt_stiffness[arm.qadr] * 0.2
    arm.reset()
    dt = m.opt.timestep
    tip_body = m.site_bodyid[arm.tip_site]
    force = np.zeros(3)
    torque = np.zeros(3)
    previous = math.inf
    # ramp, then hold until the tip moves less than 0.1 um in 0.1 s (cheap here: ~10 us a step)
    while d.time < RAMP or abs(arm.tip()[0] - previous) > 1e-7:
        previous = arm.tip()[0]
        for _ in range(int(round(0.1 / dt))):
            force[0] = -case.load * min(1.0, d.time / RAMP)
            d.qfrc_applied[:] = 0.0
            mujoco.mj_applyFT(m, d, force, torque, d.site_xpos[arm.tip_site], tip_body,
                              d.qfrc_applied)
            mujoco.mj_step(m, d)
        if d.time > 60.0:
            raise RuntimeError(f'{case.name}: the MuJoCo arm did not settle in 60 s')
    deflection = float(-arm.tip()[0])
    d.qfrc_applied[:] = 0.0
    m.dof_damping[:] = 0.0
    steps = int(round(free_time(case) / dt))
    times, xs = np.empty(steps), np.empty(steps)
    for k in range(steps):
        mujoco.mj_step(m, d)
        times[k], xs[k] = d.time, arm.tip()[0]
    m.dof_damping[:] = nominal_damping
    arm.close()
    return Response(deflection, first_frequency(times, xs), time.process_time() - start)


def run_rod(case: Case, elements: int) -> Response:
    """Measure static deflection and free vibration of a Cosserat rod of `elements` elements."""
    import elastica as ea
    from elastica.dissipation import DamperBase

    class Simulator(ea.BaseSystemCollection, ea.Constraints, ea.Forcing, ea.Damping):
        pass

    class HeldTipLoad(ea.NoForces):
        """Tip load ramped up over RAMP and removed at `release`."""

        def __init__(self, force, release):
            super().__init__()
            self.force, self.release = force, release

        def apply_forces(self, system, time=0.0):
            if time < self.release:
                system.external_forces[:, -1] += self.force * min(1.0, time / RAMP)

    class SettlingDamper(DamperBase):
        """Velocity damping until `release`, none after (free vibration)."""

        def __init__(self, rate, release, time_step, **kwargs):
            super().__init__(**kwargs)
            self.factor, self.release = math.exp(-rate * time_step), release

        def dampen_rates(self, system, time):
            if time < self.release:
                system.velocity_collection *= self.factor
                system.omega_collection *= self.factor

    start = time.process_time()
    geo = case.material
    sim = Simulator()
    rod = ea.CosseratRod.straight_rod(
        elements, np.zeros(3), np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0]),
        geo.length, geo.radius, geo.density, youngs_modulus=geo.youngs_modulus,
        shear_modulus=geo.youngs_modulus / (2.0 * (1.0 + POISSON)))
    sim.append(rod)
    sim.constrain(rod).using(ea.OneEndFixedBC, constrained_position_idx=(0,),
                             constrained_director_idx=(0,))
    release = RAMP + HOLD
    sim.add_forcing_to(rod).using(HeldTipLoad, force=np.array([-case.load, 0.0, 0.0]),
                                  release=release)
    if case.gravity:
        sim.add_forcing_to(rod).using(ea.GravityForces,
                                      acc_gravity=np.array([0.0, 0.0, -9.81]))
    sim.dampen(rod).using(SettlingDamper, rate=SETTLE_RATE, release=release,
                          time_step=ROD_DT)
    sim.finalize()
    stepper = ea.PositionVerlet()
    t = 0.0
    every = int(round(SAMPLE_EVERY / ROD_DT))
    samples = []
    total = int(round((release + free_time(case)) / ROD_DT))
    for k in range(total):
        t = stepper.step(sim, t, ROD_DT)
        if k % every == 0:
            samples.append((t, rod.position_collection[0, -1]))
    samples = np.array(samples)
    if not np.isfinite(samples).all() or np.abs(samples[:, 1]).max() > 2 * geo.length:
        raise RuntimeError(f'{case.name}: the rod diverged (time step too large?)')
    at_release = np.searchsorted(samples[:, 0], release)
    deflection = float(-samples[at_release - 1, 1])
    free = samples[at_release:]
    return Response(deflection, first_frequency(free[:, 0], free[:, 1]),
                    time.process_time() - start)


def rod_reference(case: Case) -> Tuple[Response, List[Response]]:
    """Cosserat rod extrapolated to infinitely many elements, and the runs it came from."""
    runs = [run_rod(case, n) for n in ROD_ELEMENTS]
    coarse, fine = runs
    ratio = ROD_ELEMENTS[1] / ROD_ELEMENTS[0]   # error ~ 1/n: x = (r x_fine - x_coarse)/(r-1)

    def extrapolate(a: float, b: float) -> float:
        return (ratio * b - a) / (ratio - 1.0)

    return Response(extrapolate(coarse.deflection, fine.deflection),
                    extrapolate(coarse.frequency, fine.frequency),
                    coarse.seconds + fine.seconds), runs


def relative_error(value: float, reference: float) -> float:
    """(value - reference) / reference."""
    return (value - reference) / reference


def compare(cases) -> List[dict]:
    """Run both models on every case; return one result row per case."""
    rows = []
    for case in cases:
        mj, beam = run_mujoco(case), beam_theory(case)
        rod, runs = rod_reference(case)
        rows.append({
            'case': case.name, 'domain': 'field' if case.geometry is FIELD_GEOMETRY else 'sim',
            'load_n': case.load, 'gravity': case.gravity, 'stiffness': case.stiffness,
            'mujoco': asdict(mj), 'rod': asdict(rod),
            'rod_runs': {n: asdict(r) for n, r in zip(ROD_ELEMENTS, runs)},
            'beam_theory': asdict(beam) if beam else None,
            'deflection_error': relative_error(mj.deflection, rod.deflection),
            'frequency_error': relative_error(mj.frequency, rod.frequency),
        })
    return rows


def table(rows: List[dict]) -> str:
    """Fixed-width table of the results (deflections in mm, frequencies in Hz)."""
    head = (f'{"case":<18} {"load N":>6}  {"tip mm: MuJoCo":>14} {"rod":>7} {"err":>6}  '
            f'{"f1 Hz: MuJoCo":>13} {"rod":>6} {"err":>6}  {"beam: mm":>8} {"Hz":>5}')
    lines = [head, '-' * len(head)]
    for r in rows:
        beam = r['beam_theory']
        lines.append(
            f'{r["case"]:<18} {r["load_n"]:>6.2f}  {r["mujoco"]["deflection"] * 1e3:>14.1f} '
            f'{r["rod"]["deflection"] * 1e3:>7.1f} {r["deflection_error"]:>+6.1%}  '
            f'{r["mujoco"]["frequency"]:>13.3f} {r["rod"]["frequency"]:>6.3f} '
            f'{r["frequency_error"]:>+6.1%}  '
            + (f'{beam["deflection"] * 1e3:>8.1f} {beam["frequency"]:>5.3f}' if beam
               else f'{"-":>8} {"-":>5}'))
    return '\n'.join(lines)


def parse_args(argv) -> Tuple[argparse.Namespace, List[Case]]:
    """Command-line arguments and the selected cases."""
    parser = argparse.ArgumentParser(prog='softmaint-sim-fidelity',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('--json', type=Path, help='also write the results to this JSON file')
    parser.add_argument('--cases', nargs='+', metavar='NAME',
                        help=f'run only these cases (default: all of {[c.name for c in CASES]})')
    args = parser.parse_args(argv)
    names = {c.name: c for c in CASES}
    unknown = sorted(set(args.cases or ()) - set(names))
    if unknown:
        parser.error(f'unknown case(s) {unknown}; allowed: {list(names)}')
    return args, [names[n] for n in args.cases] if args.cases else list(CASES)


def main(argv=None) -> int:
    """Entry point of softmaint-sim-fidelity."""
    args, cases = parse_args(argv)
    started = time.monotonic()
    rows = compare(cases)
    print(table(rows))
    worst = {key: max(abs(r[key]) for r in rows)
             for key in ('deflection_error', 'frequency_error')}
    print(f'worst |error|: tip deflection {worst["deflection_error"]:.1%}, first frequency '
          f'{worst["frequency_error"]:.1%} ({time.monotonic() - started:.0f} s)')
    if args.json:
        args.json.write_text(json.dumps({'cases': rows, 'worst': worst, 'rod': {
            'elements': ROD_ELEMENTS, 'dt': ROD_DT, 'poisson': POISSON,
            'extrapolation': 'richardson, error ~ 1/n'}}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
