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
    from softmaint_sim.fidelity import beam_theory, CASES, run_mujoco
    case = CASES[0]   # no gravity, small load
    small, double = run_mujoco(case), run_mujoco(replace(case, load=2 * case.load))
    soft = run_mujoco(replace(case, stiffness=0.5))
    theory = beam_theory(case)
    # a chain of 20 hinges with E I / ds springs at the segment starts: ~7 % softer than a beam
    assert small.deflection == pytest.approx(theory.deflection, rel=0.10)
    assert double.deflection / small.deflection == pytest.approx(2.0, rel=0.02)
    assert soft.deflection / small.deflection == pytest.approx(2.0, rel=0.02)
    assert 0.3 < small.frequency < 2.0


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
