"""Degradation is physics: each kind of wear or damage leaves its signature in the simulation."""
from dataclasses import replace

import numpy as np
import pytest

SEVERE = 0.7


@pytest.fixture(scope='module')
def generator():
    from softmaint_sim.episode import EpisodeGenerator
    gen = EpisodeGenerator(render=True)
    yield gen
    gen.close()


def _state(damage='none', severity=0.0, stiffness=0.95, side=0, location=0.5):
    from softmaint_core.taxonomy import DAMAGE_TYPES
    from softmaint_sim.degradation import Degradation
    return Degradation(stiffness=stiffness, damage=DAMAGE_TYPES.index(damage),
                       severity=severity if damage != 'none' else 0.0, side=side,
                       location=location)


def _simulate(gen, state, render=False):
    """One 2 s window of the sim arm, same motion, look and noise draws for every state."""
    from softmaint_sim.arm import Look
    from softmaint_sim.episode import sample_params
    params = sample_params(np.random.default_rng(5), 0, 0)
    params = replace(params, state=state, amplitude=(150.0, 100.0), frequency=0.6, phase=0.0,
                     look=Look())
    streams, actuator = gen.simulate(params, np.random.default_rng(6), render=render)
    return streams, actuator


def _hold(arm, physics, pressures, contact=True):
    """Tip x [m] after holding constant chamber pressures [kPa] until static."""
    import mujoco
    arm.apply(physics)
    # a 0.3 s retardation time settles in ~4 s instead of ~10 s; statics are unchanged
    arm.model.dof_damping[:] = arm.model.jnt_stiffness * 0.3
    arm.model.opt.disableflags = 0 if contact else mujoco.mjtDisableBit.mjDSBL_CONTACT
    arm.reset()
    dt = arm.model.opt.timestep
    for k in range(int(2.0 / dt)):   # ramp the load: hardly any vibration to wait for
        arm.data.ctrl[:] = np.asarray(pressures) * k * dt / 2.0
        arm.step()
    arm.data.ctrl[:] = pressures
    positions = []
    for _ in range(2):
        for _ in range(int(2.0 / dt)):
            arm.step()
        positions.append(float(arm.tip()[0]))
    assert abs(positions[1] - positions[0]) < 1e-4, 'not static yet'
    return positions[1]


def test_fatigue_softens_monotonically_and_grows_damping():
    from softmaint_sim.degradation import apply, cycles_to_soften
    state = _state(stiffness=1.0)
    stiffness, damping, levels = [], [], []
    for _ in range(60):
        state.advance(2000, accel=1.2, load=1.0)
        physics, _ = apply(state)
        stiffness.append(state.stiffness)
        damping.append(physics.damping.mean())
        levels.append(state.labels(1.2, 1.0)['fatigue'])
    assert all(np.diff(stiffness) < 0) and all(np.diff(damping) > 0)
    assert levels[0] == 0 and levels[-1] == 2 and all(np.diff(levels) >= 0)
    # the closed form of the rate law agrees with its integration
    assert cycles_to_soften(stiffness[-1], 1.2, 1.0, 1.0) == pytest.approx(state.cycles, rel=0.01)


def test_softer_arm_deflects_further_under_the_same_load():
    from softmaint_sim.arm import Arm, SIM_GEOMETRY
    from softmaint_sim.degradation import apply
    arm = Arm(SIM_GEOMETRY, render=False)
    try:
        deflection = [-_hold(arm, apply(_state(stiffness=k))[0], (4.0, 67.0))
                      for k in (1.0, 0.85, 0.7, 0.55)]
    finally:
        arm.close()
    # a hanging arm: gravity straightens it, so softening shows as a few mm each step
    assert all(np.diff(deflection) > 0.002), deflection


def test_leak_keeps_chamber_pressure_below_command(generator):
    from softmaint_sim.degradation import puncture_coefficient
    from softmaint_sim.arm import SIM_GEOMETRY
    healthy, _ = _simulate(generator, _state())
    leaking, actuator = _simulate(generator, _state('puncture_leak', SEVERE, side=1))

    def ratio(streams, side):
        """Gain of achieved over command (least squares; the lag of 30 ms barely matters)."""
        command = streams.command[:, side]
        return np.dot(streams.achieved[:, side], command) / np.dot(command, command)

    assert ratio(healthy, 0) == pytest.approx(1.0, abs=0.03)
    assert ratio(healthy, 1) == pytest.approx(1.0, abs=0.03)
    assert ratio(leaking, 0) == pytest.approx(ratio(healthy, 0), abs=0.01)   # other side intact
    volume = SIM_GEOMETRY.chamber_area * SIM_GEOMETRY.length
    assert actuator.leak[1] == pytest.approx(puncture_coefficient(SEVERE, volume))
    # the sqrt leak loses more of a low pressure: the gain lies between the shortfalls at the
    # stroke's peak (100 kPa) and at a quarter of it
    assert 1.0 - actuator.shortfall(1, 25.0) < ratio(leaking, 1) < 1.0 - actuator.shortfall(1)
    assert ratio(leaking, 1) < 0.85
    # the arm bends less towards the leaking side
    assert leaking.tip[:, 0].min() > healthy.tip[:, 0].min() + 0.005


def _lag(command, achieved, dt):
    """Delay [s] that best aligns achieved with command (normalised cross-correlation peak)."""
    lags = np.arange(0, int(0.8 / dt))
    scores = [np.corrcoef(command[:len(command) - k], achieved[k:])[0, 1] for k in lags]
    return lags[int(np.argmax(scores))] * dt


def test_clog_delays_the_response_to_the_command(generator):
    healthy, _ = _simulate(generator, _state())
    clogged, actuator = _simulate(generator, _state('actuator_clog', SEVERE, side=0))
    dt = healthy.times[1] - healthy.times[0]
    base = [_lag(healthy.command[:, i], healthy.achieved[:, i], dt) for i in (0, 1)]
    slow = [_lag(clogged.command[:, i], clogged.achieved[:, i], dt) for i in (0, 1)]
    assert max(base) <= 0.05 and slow[0] > base[0] + 0.15, (base, slow)
    assert slow[1] == pytest.approx(base[1], abs=0.006)   # the other chamber is not clogged
    assert actuator.lag > 0.25
    # the motion follows late too: the tip's swing towards the post peaks later
    assert np.argmax(clogged.tip[:, 0]) > np.argmax(healthy.tip[:, 0])


def test_crack_is_visible_and_softens_the_arm_locally():
    from softmaint_sim.arm import Arm, SEGMENTS, SIM_GEOMETRY
    from softmaint_sim.degradation import apply
    physics, _ = apply(_state('crack_tear', SEVERE, location=0.5))
    centre = int(np.argmin(physics.stiffness))
    assert abs(centre - (0.5 * SEGMENTS - 0.5)) <= 0.5
    assert physics.stiffness[centre] < 0.6 * min(physics.stiffness[0], physics.stiffness[-1])
    arm = Arm(SIM_GEOMETRY)
    try:
        frames = []
        for state in (_state(), _state('crack_tear', SEVERE, location=0.5)):
            arm.apply(apply(state)[0])
            arm.reset()
            frames.append(arm.render().astype(int))
        changed = np.abs(frames[1] - frames[0]).max(axis=2) > 40
        assert changed.sum() >= 4                       # a dark mark on the arm's skin
        assert frames[1][changed].mean() < frames[0][changed].mean()
        # under load the cracked zone bends more than the same zone of a healthy arm
        bends = []
        for state in (_state(), _state('crack_tear', SEVERE, location=0.5)):
            _hold(arm, apply(state)[0], (4.0, 67.0))
            bends.append(np.abs(arm.angles()))
        share = [b[centre - 1:centre + 2].sum() / b.sum() for b in bends]
        assert share[1] > 1.3 * share[0], share
    finally:
        arm.close()


def test_crack_shows_on_the_rendered_episode(generator):
    healthy, _ = _simulate(generator, _state(), render=True)
    cracked, _ = _simulate(generator, _state('crack_tear', 0.9, location=0.4), render=True)
    assert healthy.teacher_frames.shape == cracked.teacher_frames.shape == (20, 64, 64, 3)
    darker = (healthy.teacher_frames.astype(int) - cracked.teacher_frames).max(axis=3) > 60
    assert darker.reshape(20, -1).sum(axis=1).min() >= 2   # on every frame


def test_delamination_bends_the_arm_asymmetrically():
    from softmaint_sim.arm import Arm, SIM_GEOMETRY
    from softmaint_sim.degradation import apply
    # the planar variant with opposed chambers: both strokes lie in the x-z plane
    arm = Arm(replace(SIM_GEOMETRY, spatial=False, chamber_directions=(0.0, 180.0)),
              render=False)
    try:
        def towards(state):
            physics = apply(state)[0]
            return (_hold(arm, physics, (83.0, 0.0), contact=False),
                    -_hold(arm, physics, (0.0, 83.0), contact=False),
                    _hold(arm, physics, (0.0, 0.0), contact=False))

        side0, side1, rest = towards(_state())
        assert side0 == pytest.approx(side1, rel=0.01) and abs(rest) < 1e-4
        side0, side1, rest = towards(_state('delamination_bulge', SEVERE, side=0, location=0.3))
        assert side1 > 1.2 * side0                      # bends less towards the bulged side
        assert rest < -0.005                            # and rests bent away from it
    finally:
        arm.close()


def test_damage_growth_raises_urgency_through_remaining_life():
    from softmaint_core.taxonomy import URGENCY_HORIZON_CYCLES
    state = _state('puncture_leak', 0.3, stiffness=0.95)
    urgency, rul = [], []
    for _ in range(40):
        state.advance(1000, accel=1.0, load=1.0)
        labels = state.labels(1.0, 1.0)
        urgency.append(labels['urgency'])
        rul.append(labels['rul'])
    alive = np.array(rul) > 0
    assert all(np.diff(np.array(rul)[alive]) < 0) and all(np.diff(urgency) >= 0)
    assert urgency[-1] == 1.0 and not alive[-1]
    for u, r in zip(urgency, rul):
        assert u == pytest.approx(max(0.0, 1.0 - r / URGENCY_HORIZON_CYCLES))


def test_simulation_is_deterministic(generator):
    a, _ = _simulate(generator, _state('delamination_bulge', 0.5), render=True)
    b, _ = _simulate(generator, _state('delamination_bulge', 0.5), render=True)
    np.testing.assert_array_equal(a.angles, b.angles)
    np.testing.assert_array_equal(a.taxels, b.taxels)
    np.testing.assert_array_equal(a.teacher_frames, b.teacher_frames)


def test_spatial_arm_bends_in_each_chamber_direction():
    """Chamber 1 bends the arm back and to the side (150 deg): the tip leaves the x-z plane."""
    from softmaint_sim.arm import Arm, Physics, SIM_GEOMETRY
    arm = Arm(SIM_GEOMETRY, render=False)
    try:
        _hold(arm, Physics.healthy(), (0.0, 60.0), contact=False)
        x, y, _ = arm.tip_position()
        assert x < -0.02 and y > 0.01
        assert np.degrees(np.arctan2(y, x)) == pytest.approx(150.0, abs=1.0)
        _hold(arm, Physics.healthy(), (60.0, 0.0), contact=False)
        assert arm.tip_position()[1] == pytest.approx(0.0, abs=1e-6)   # chamber 0: in plane
    finally:
        arm.close()


def test_closed_chamber_empties_through_a_puncture_as_the_orifice_law_says():
    """
    Valve shut, dp/dt = -beta sqrt(p): sqrt(p) falls linearly, and the chamber is empty after
    2 sqrt(p0) / beta, which halves when the hole's area (so beta) doubles.
    """
    from softmaint_sim.degradation import ChamberModel, puncture_coefficient
    dt, p0 = 0.005, 120.0
    times = np.arange(1, 401) * dt
    empty = []
    for severity in (0.1, 0.2):
        beta = puncture_coefficient(severity, 8.0e-5)
        chambers = ChamberModel(tau=(np.inf, np.inf), leak=(beta, 0.0))
        pressure, _ = chambers.respond(np.zeros((len(times), 2)), dt,
                                       state=[(p0, []), (p0, [])])
        expected = np.maximum(np.sqrt(p0) - 0.5 * beta * times, 0.0) ** 2
        np.testing.assert_allclose(pressure[:, 0], expected, atol=0.02 * p0)
        np.testing.assert_allclose(pressure[:, 1], p0)        # no hole: it holds its pressure
        empty.append(times[np.argmax(pressure[:, 0] < 0.01 * p0)])
        assert empty[-1] == pytest.approx(2.0 * np.sqrt(p0) / beta, rel=0.1)
    assert empty[1] == pytest.approx(empty[0] / 2.0, rel=0.1)


def test_leak_shortfall_grows_with_the_orifice_and_matches_the_steady_state():
    from softmaint_sim.degradation import ChamberModel, puncture_coefficient
    shortfalls = []
    for severity in (0.1, 0.3, 0.6, 1.0):
        chambers = ChamberModel(leak=(puncture_coefficient(severity, 8.0e-5), 0.0))
        pressure, _ = chambers.respond(np.full((400, 2), 100.0), 0.005)
        assert pressure[-1, 0] == pytest.approx(chambers.steady_pressure(0, 100.0), rel=1e-3)
        assert pressure[-1, 1] == pytest.approx(100.0, rel=1e-6)
        shortfalls.append(chambers.shortfall(0))
    assert all(np.diff(shortfalls) > 0) and 0.3 < shortfalls[-1] < 0.6


@pytest.mark.parametrize('damage', ['puncture_leak', 'crack_tear', 'delamination_bulge',
                                    'actuator_clog'])
def test_damage_is_labelled_exactly_from_its_detectability_threshold(damage):
    from softmaint_core.taxonomy import DAMAGE_TYPES
    from softmaint_sim.degradation import (Damage, DETECTABLE, detectable_severity, effect)
    kind = DAMAGE_TYPES.index(damage)
    threshold = detectable_severity(kind)
    assert effect(Damage(kind, threshold)) == pytest.approx(DETECTABLE[damage], rel=1e-6)
    below = _state(damage, threshold * 0.98).labels(1.0, 1.0)
    at = _state(damage, threshold * 1.0001).labels(1.0, 1.0)
    assert (below['damage'], below['severity']) == (0, 0.0)
    assert at['damage'] == kind and at['severity'] == pytest.approx(threshold, rel=1e-3)
    # an invisible damage still wears the arm (a fast-growing one here): the true RUL counts
    # it, the urgency label, of what the sensors can tell, does not
    invisible = _state(damage, threshold * 0.98)
    invisible.damage_gain = {damage: 100.0}
    labels, healthy = invisible.labels(1.0, 1.0), _state().labels(1.0, 1.0)
    assert labels['damage'] == 0 and labels['rul'] < healthy['rul']
    assert labels['urgency'] == healthy['urgency']
    visible = _state(damage, threshold * 1.02)
    visible.damage_gain = {damage: 100.0}
    assert visible.labels(1.0, 1.0)['urgency'] > healthy['urgency']


def test_a_visible_damage_is_labelled_before_an_invisible_one_that_fails_sooner():
    from softmaint_core.taxonomy import DAMAGE_TYPES
    from softmaint_sim.degradation import Damage
    state = _state('crack_tear', 0.05)                       # below the crack's threshold
    state.add_damage(Damage(DAMAGE_TYPES.index('actuator_clog'), 0.5))
    assert state.labels(1.0, 1.0)['damage'] == DAMAGE_TYPES.index('actuator_clog')


def test_urgency_is_the_observable_life_an_arms_own_rate_factor_is_not_seen():
    typical, fast = _state('crack_tear', 0.6), _state('crack_tear', 0.6)
    fast.rate_factor = 1.5                    # this arm wears 1.5x faster: no sensor shows it
    assert fast.labels(1.0, 1.0)['urgency'] == typical.labels(1.0, 1.0)['urgency'] > 0.0
    assert fast.labels(1.0, 1.0)['rul'] == pytest.approx(typical.labels(1.0, 1.0)['rul'] / 1.5)
