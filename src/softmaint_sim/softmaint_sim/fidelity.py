"""
softmaint-sim-fidelity: the reduced-order MuJoCo arm against a Cosserat rod (PyElastica).

    softmaint-sim-fidelity [--out docs/reports/fidelity] [--cases NAME ...]

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
from dataclasses import asdict, dataclass, field, replace
import json
import math
from pathlib import Path
import sys
import time
from typing import List, Optional, Tuple

import mujoco
import numpy as np

from . import degradation as dg
from .arm import Arm, ArmGeometry, FIELD_GEOMETRY, Physics, POISSON, SIM_GEOMETRY

ROD_ELEMENTS = (30, 60)    # two resolutions for the Richardson extrapolation
ROD_DT = 1.0e-4
RAMP = 0.3                 # load ramp [s]
HOLD = 2.0                 # rod: time to static under damping [s]
SETTLE_RATE = 10.0         # velocity damping rate while settling [1/s]
FREE_PERIODS = 2.5         # periods of free vibration recorded after release
SAMPLE_EVERY = 1.0e-3      # tip sampling period [s]
TOLERANCE = 0.05           # |relative error| allowed against the rod


@dataclass(frozen=True)
class Case:
    """One configuration compared."""

    name: str
    geometry: ArmGeometry
    load: float                # horizontal tip load [N]
    gravity: bool = True
    state: dg.Degradation = field(default_factory=dg.Degradation)   # applied to both models
    lateral: bool = False      # load along y (the second bending plane) instead of x

    def stiffness_at(self, arc: np.ndarray) -> np.ndarray:
        """Bending stiffness fraction along the arm (arc-length fractions)."""
        return dg.stiffness_profile(self.state, arc)


# Three other arms: long and soft, short and stiff, each cut into another number of segments.
LONG_SOFT = replace(SIM_GEOMETRY, length=0.60, segments=30, youngs_modulus=0.8e6)
SHORT_STIFF = replace(SIM_GEOMETRY, length=0.30, radius=0.014, segments=12,
                      youngs_modulus=2.5e6)
CRACK = dg.DAMAGE_TYPES.index('crack_tear')
CASES = (
    Case('sim-nograv-small', SIM_GEOMETRY, load=0.05, gravity=False),
    Case('sim-nograv-large', SIM_GEOMETRY, load=0.4, gravity=False),
    Case('sim-hanging', SIM_GEOMETRY, load=0.2),
    Case('sim-hanging-lateral', SIM_GEOMETRY, load=0.2, lateral=True),
    Case('sim-fatigued-0.6', SIM_GEOMETRY, load=0.2, state=dg.Degradation(stiffness=0.6)),
    Case('sim-crack-0.8', SIM_GEOMETRY, load=0.2,
         state=dg.Degradation(damage=CRACK, severity=0.8, location=0.3)),
    Case('field-hanging', FIELD_GEOMETRY, load=0.2),
    Case('long-soft-30seg', LONG_SOFT, load=0.1),
    Case('short-stiff-12seg', SHORT_STIFF, load=0.3),
)
SMALL_CASES = ('sim-crack-0.8',)   # the test's case: degraded, gravity, the default arm


@dataclass
class Response:
    """Static tip deflection [m] and first bending frequency [Hz] of one model."""

    deflection: float
    frequency: float
    seconds: float = 0.0       # CPU time of the run


def beam_theory(case: Case) -> Optional[Response]:
    """Euler-Bernoulli cantilever (small deflection, no gravity, healthy); None otherwise."""
    if case.gravity or case.state != dg.Degradation():
        return None
    geo = case.geometry
    ei = geo.bending_stiffness
    return Response(deflection=case.load * geo.length ** 3 / (3.0 * ei),
                    frequency=1.875 ** 2 / (2 * math.pi) * math.sqrt(
                        ei / (geo.mass_per_length * geo.length ** 4)))


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
    reference = beam_theory(replace(case, gravity=False, state=dg.Degradation()))
    return FREE_PERIODS / reference.frequency


def run_mujoco(case: Case) -> Response:
    """Measure static deflection and free vibration of the reduced-order arm."""
    start = time.process_time()
    arm = Arm(case.geometry, render=False)
    m, d = arm.model, arm.data
    physics = Physics.healthy(case.geometry.segments)
    physics.stiffness[:] = case.stiffness_at(dg.arc_profile(case.geometry.segments))
    arm.apply(physics)
    m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.gravity[:] = (0.0, 0.0, -9.81 if case.gravity else 0.0)
    # settle: damping with a 0.2 s retardation time (well damped, static result unchanged)
    m.dof_damping[:] = m.jnt_stiffness * 0.2
    arm.reset()
    dt = m.opt.timestep
    axis = 1 if case.lateral else 0
    tip_body = m.site_bodyid[arm.tip_site]
    force = np.zeros(3)
    torque = np.zeros(3)
    previous = math.inf
    # ramp, then hold until the tip moves less than 0.1 um in 0.1 s (cheap here: ~30 us a step)
    while d.time < RAMP or abs(arm.tip_position()[axis] - previous) > 1e-7:
        previous = arm.tip_position()[axis]
        for _ in range(int(round(0.1 / dt))):
            force[axis] = -case.load * min(1.0, d.time / RAMP)
            d.qfrc_applied[:] = 0.0
            mujoco.mj_applyFT(m, d, force, torque, d.site_xpos[arm.tip_site], tip_body,
                              d.qfrc_applied)
            mujoco.mj_step(m, d)
        if d.time > 60.0:
            raise RuntimeError(f'{case.name}: the MuJoCo arm did not settle in 60 s')
    deflection = float(-arm.tip_position()[axis])
    d.qfrc_applied[:] = 0.0
    m.dof_damping[:] = 0.0
    steps = int(round(free_time(case) / dt))
    times, xs = np.empty(steps), np.empty(steps)
    for k in range(steps):
        mujoco.mj_step(m, d)
        times[k], xs[k] = d.time, arm.tip_position()[axis]
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
    geo = case.geometry
    sim = Simulator()
    rod = ea.CosseratRod.straight_rod(
        elements, np.zeros(3), np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0]),
        geo.length, geo.radius, geo.density, youngs_modulus=geo.youngs_modulus,
        shear_modulus=geo.youngs_modulus / (2.0 * (1.0 + POISSON)))
    # the material's stiffness fraction at the rod's interior nodes (arc (k + 1) / n)
    factor = case.stiffness_at(np.arange(1, elements) / elements)
    rod.bend_matrix[:] = rod.bend_matrix * factor[None, None, :]
    sim.append(rod)
    sim.constrain(rod).using(ea.OneEndFixedBC, constrained_position_idx=(0,),
                             constrained_director_idx=(0,))
    release = RAMP + HOLD
    axis = 1 if case.lateral else 0
    load = np.zeros(3)
    load[axis] = -case.load
    sim.add_forcing_to(rod).using(HeldTipLoad, force=load, release=release)
    if case.gravity:
        sim.add_forcing_to(rod).using(ea.GravityForces,
                                      acc_gravity=np.array([0.0, 0.0, -9.81]))
    dt = rod_time_step(geo, elements)
    sim.dampen(rod).using(SettlingDamper, rate=SETTLE_RATE, release=release, time_step=dt)
    sim.finalize()
    stepper = ea.PositionVerlet()
    t = 0.0
    every = int(round(SAMPLE_EVERY / dt))
    samples = []
    total = int(round((release + free_time(case)) / dt))
    for k in range(total):
        t = stepper.step(sim, t, dt)
        if k % every == 0:
            samples.append((t, rod.position_collection[axis, -1]))
    samples = np.array(samples)
    if not np.isfinite(samples).all() or np.abs(samples[:, 1]).max() > 2 * geo.length:
        raise RuntimeError(f'{case.name}: the rod diverged (time step too large?)')
    at_release = np.searchsorted(samples[:, 0], release)
    deflection = float(-samples[at_release - 1, 1])
    free = samples[at_release:]
    return Response(deflection, first_frequency(free[:, 0], free[:, 1]),
                    time.process_time() - start)


def rod_time_step(geo: ArmGeometry, elements: int) -> float:
    """
    Stable rod step [s]: ROD_DT, or less for short, stiff elements.

    0.1 ms is stable and 0.2 ms diverges for the default arm at 60 elements (6.7 mm elements,
    bar wave speed sqrt(E / rho) = 37 m/s): keep dt below 0.55 element crossing times.
    """
    crossing = geo.length / elements / math.sqrt(geo.youngs_modulus / geo.density)
    return min(ROD_DT, 0.55 * crossing)


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
        geo = case.geometry
        rows.append({
            'name': case.name, 'length_m': geo.length, 'segments': geo.segments,
            'youngs_modulus_pa': geo.youngs_modulus, 'radius_m': geo.radius,
            'load_n': case.load, 'gravity': case.gravity, 'lateral': case.lateral,
            'degradation': {'stiffness': case.state.stiffness,
                            'damage': case.state.damage_name,
                            'severity': case.state.severity, 'location': case.state.location},
            'mujoco': asdict(mj), 'rod': asdict(rod),
            'rod_runs': {n: asdict(r) for n, r in zip(ROD_ELEMENTS, runs)},
            'beam_theory': asdict(beam) if beam else None,
            'tip_rel_err': relative_error(mj.deflection, rod.deflection),
            'f1_rel_err': relative_error(mj.frequency, rod.frequency),
        })
    return rows


def table(rows: List[dict]) -> str:
    """Markdown table of the results (deflections in mm, frequencies in Hz)."""
    lines = ['| case | L m | N | E MPa | load N | tip mm: MuJoCo | rod | error | '
             'f1 Hz: MuJoCo | rod | error | beam mm / Hz |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        beam = r['beam_theory']
        lines.append(
            f'| {r["name"]} | {r["length_m"]:.2f} | {r["segments"]} | '
            f'{r["youngs_modulus_pa"] / 1e6:.2f} | {r["load_n"]:.2f} | '
            f'{r["mujoco"]["deflection"] * 1e3:.1f} | {r["rod"]["deflection"] * 1e3:.1f} | '
            f'{r["tip_rel_err"]:+.1%} | {r["mujoco"]["frequency"]:.3f} | '
            f'{r["rod"]["frequency"]:.3f} | {r["f1_rel_err"]:+.1%} | '
            + (f'{beam["deflection"] * 1e3:.1f} / {beam["frequency"]:.3f} |' if beam
               else '- |'))
    return '\n'.join(lines)


def plot(rows: List[dict], path: Path) -> None:
    """Bar chart of both relative errors per case, with the +/-TOLERANCE band."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    names = [r['name'] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(x - 0.2, [100 * r['tip_rel_err'] for r in rows], 0.4, label='static tip deflection')
    ax.bar(x + 0.2, [100 * r['f1_rel_err'] for r in rows], 0.4, label='first frequency')
    ax.axhspan(-100 * TOLERANCE, 100 * TOLERANCE, color='green', alpha=0.12,
               label=f'target +/-{TOLERANCE:.0%}')
    ax.axhline(0.0, color='black', linewidth=0.8)
    ax.set_xticks(x, names, rotation=30, ha='right')
    ax.set_ylabel('MuJoCo arm vs Cosserat rod [%]')
    ax.set_title('Reduced-order arm against PyElastica (Richardson-extrapolated)')
    ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv) -> Tuple[argparse.Namespace, List[Case]]:
    """Command-line arguments and the selected cases."""
    parser = argparse.ArgumentParser(prog='softmaint-sim-fidelity',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('docs/reports/fidelity'),
                        help='write summary.json, table.md and fidelity.png here '
                             '(default: %(default)s)')
    parser.add_argument('--cases', nargs='+', metavar='NAME',
                        help=f'run only these cases (default: all of {[c.name for c in CASES]})')
    args = parser.parse_args(argv)
    names = {c.name: c for c in CASES}
    unknown = sorted(set(args.cases or ()) - set(names))
    if unknown:
        parser.error(f'unknown case(s) {unknown}; allowed: {list(names)}')
    return args, [names[n] for n in args.cases] if args.cases else list(CASES)


def main(argv=None) -> int:
    """Entry point of softmaint-sim-fidelity; exit 1 when a case misses the tolerance."""
    args, cases = parse_args(argv)
    started = time.monotonic()
    rows = compare(cases)
    text = table(rows)
    print(text)
    worst = {key: max(abs(r[key]) for r in rows) for key in ('tip_rel_err', 'f1_rel_err')}
    seconds = time.monotonic() - started
    print(f'worst |error|: tip deflection {worst["tip_rel_err"]:.1%}, first frequency '
          f'{worst["f1_rel_err"]:.1%} (target {TOLERANCE:.0%}; {seconds:.0f} s)')
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'summary.json').write_text(json.dumps({
        'cases': rows, 'worst': worst, 'tolerance': TOLERANCE,
        'within_tolerance': all(v <= TOLERANCE for v in worst.values()),
        'seconds': seconds, 'command': 'softmaint-sim-fidelity ' + ' '.join(argv or sys.argv[1:]),
        'rod': {'elements': ROD_ELEMENTS, 'dt_max': ROD_DT, 'poisson': POISSON,
                'extrapolation': 'richardson, error ~ 1/n'}}, indent=2))
    (args.out / 'table.md').write_text(text + '\n')
    plot(rows, args.out / 'fidelity.png')
    print(f'wrote {args.out}/summary.json, table.md, fidelity.png')
    return 0 if all(v <= TOLERANCE for v in worst.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
