"""The fidelity check's parts: frequency estimate, the MuJoCo arm and the rod reference."""
from dataclasses import replace
import math
import subprocess
import sys

import numpy as np
import pytest


def test_first_frequency_of_a_sampled_sine():
    from softmaint_sim.fidelity import first_frequency
    times = np.arange(0.0, 3.0, 1e-3)
    assert first_frequency(times, 0.3 + 0.01 * np.sin(2 * math.pi * 1.37 * times + 0.4)) \
        == pytest.approx(1.37, rel=1e-3)
    assert math.isnan(first_frequency(times[:500], np.sin(2 * math.pi * times[:500])))


def test_mujoco_arm_is_a_linear_cantilever_close_to_beam_theory():
    from softmaint_sim.degradation import Degradation
    from softmaint_sim.fidelity import beam_theory, CASES, run_mujoco
    case = CASES[0]   # no gravity, small load
    small, double = run_mujoco(case), run_mujoco(replace(case, load=2 * case.load))
    soft = run_mujoco(replace(case, state=Degradation(stiffness=0.5)))
    theory = beam_theory(case)
    # joints at the segments' mid-points: the midpoint rule, within 1 / (4 N^2) of a beam
    assert small.deflection == pytest.approx(theory.deflection, rel=0.01)
    # the rod's own mass per length, not the capsules' (their caps overlap): f1 of the beam
    assert small.frequency == pytest.approx(theory.frequency, rel=0.01)
    assert double.deflection / small.deflection == pytest.approx(2.0, rel=0.02)
    assert soft.deflection > 1.5 * small.deflection   # fatigue softens the base most


def test_arm_mass_is_the_rods_mass():
    from softmaint_sim.arm import Arm, ArmGeometry, SIM_GEOMETRY
    for geo in (SIM_GEOMETRY, ArmGeometry(length=0.6, segments=30)):
        arm = Arm(geo, render=False)
        moving = arm.model.body_mass.sum()
        arm.close()
        # everything but the clamped first half-segment moves
        assert moving == pytest.approx(geo.mass * (1 - 0.5 / geo.segments), rel=1e-5)


@pytest.mark.slow
def test_small_case_against_the_cosserat_rod_within_five_percent(tmp_path):
    """A cracked, hanging arm: the report command's row, each error within +/-5 %."""
    import json
    from softmaint_sim.fidelity import main, SMALL_CASES
    assert main(['--cases', *SMALL_CASES, '--out', str(tmp_path)]) == 0
    summary = json.loads((tmp_path / 'summary.json').read_text())
    (row,) = summary['cases']
    assert row['name'] == SMALL_CASES[0] and row['degradation']['damage'] == 'crack_tear'
    assert abs(row['tip_rel_err']) <= 0.05 and abs(row['f1_rel_err']) <= 0.05
    # the crack makes both models deflect more than the healthy arm's rod reference does
    assert row['rod']['deflection'] > 0.0357 and row['mujoco']['deflection'] > 0.0357
    assert (tmp_path / 'fidelity.png').stat().st_size > 10_000


@pytest.mark.slow
def test_rod_reference_converges_like_a_clamped_rod_should():
    """30 elements: ~1.5 / n too stiff (5 %), frequency within a few % of beam theory."""
    from softmaint_sim.fidelity import beam_theory, CASES, run_rod
    case = CASES[0]
    rod, theory = run_rod(case, 30), beam_theory(case)
    assert rod.deflection / theory.deflection == pytest.approx(1 - 1.5 / 30, abs=0.01)
    assert rod.frequency == pytest.approx(theory.frequency, rel=0.04)


def test_unknown_case_is_refused_with_the_allowed_names():
    run = subprocess.run([sys.executable, '-m', 'softmaint_sim.fidelity', '--cases', 'nope'],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "unknown case(s) ['nope']; allowed: ['sim-nograv-small'" in run.stderr
