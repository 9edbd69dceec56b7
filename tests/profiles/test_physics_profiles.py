"""
Profile physics show in the streams: what each workplace does to the arm and its sensors.

Same episode index with and without a profile (episode.generate), the rate laws with the
profiles' gains, the material states they add, the live sim robot per demo scenario.
"""
from dataclasses import replace

import numpy as np
import pytest
from softmaint_sim import degradation as dg
from softmaint_sim import episode as ep
from softmaint_sim import profiles
from softmaint_sim.scenario import load, parse, ScenarioError

EPISODES = range(4)


@pytest.fixture(scope='module')
def rows():
    """Field episodes 0-3 of seed 5 under every profile (None = default)."""
    gen = ep.EpisodeGenerator()
    try:
        return {name: [ep.generate(gen, 5, i, 1.0, profile=profiles.sim_profile(name))
                       for i in EPISODES]
                for name in ('default', 'deep_sea', 'medical', 'space',
                             'carbon_negative_buildings')}
    finally:
        gen.close()


def camera_stats(rows):
    frames = [r['field_camera'].astype(float) for r in rows if r['field_mask'][0]]
    return (np.mean([f.mean() for f in frames]),
            np.mean([f.std(axis=(1, 2, 3)).mean() for f in frames]))


@pytest.mark.slow
def test_deep_sea_frames_are_darker_and_flatter_space_harsher(rows):
    default_mean, default_contrast = camera_stats(rows['default'])
    sea_mean, sea_contrast = camera_stats(rows['deep_sea'])
    space_mean, space_contrast = camera_stats(rows['space'])
    assert sea_mean < 0.8 * default_mean and sea_contrast < 0.85 * default_contrast
    assert space_contrast > 1.5 * default_contrast
    # the turbid veil is blue-green: green and blue above red, unlike the warm default scene
    sea = np.mean([r['field_camera'].mean(axis=(0, 2, 3)) for r in rows['deep_sea']], axis=0)
    assert sea[1] > sea[0] and sea[2] > sea[0]


@pytest.mark.slow
def test_unsensed_quantities_are_nan_in_the_field_view(rows):
    for name, unsensed in (('default', []), ('deep_sea', [1, 2]), ('medical', [2]),
                           ('space', [1, 2]), ('carbon_negative_buildings', [])):
        for row in rows[name]:
            env = row['field_environment']
            if not row['field_mask'][3]:
                continue
            assert np.flatnonzero(np.isnan(env).any(axis=0)).tolist() == unsensed, name
    # what the deep-sea and space robots do sense: 300 bar-class pressure, vacuum
    sea = [r['field_environment'][:, 3] for r in rows['deep_sea'] if r['field_mask'][3]]
    assert min(map(np.min, sea)) > 4000.0
    space = [r['field_environment'][:, 3] for r in rows['space'] if r['field_mask'][3]]
    assert max(map(np.max, space)) < 0.01


def test_sea_water_ingress_grows_with_pressure():
    drivers = profiles.PROFILES['deep_sea'].drivers
    rates = []
    for pressure in (101.3, 10.0e3, 30.0e3):
        state = dg.Degradation(stiffness=0.9, damage=2, severity=0.3)   # crack_tear
        profiles.update(state, drivers, dg.Environment(temperature=3.0, pressure=pressure))
        rates.append((state.fatigue_rate(1.0, 1.0), state.damage_rate(1.0, 1.0)))
    fatigue, crack = np.array(rates).T
    assert np.all(np.diff(fatigue) > 0) and np.all(np.diff(crack) > 0)
    assert crack[2] / crack[0] == pytest.approx((1 + 0.6 * 4.0) / (1 + 0.6 * 1.01013), rel=1e-6)


def test_default_state_has_unit_gains():
    state = dg.Degradation(stiffness=0.8, damage=1, severity=0.4)
    assert state.fatigue_rate(1.3, 0.9) == dg.R_K * 1.3 * 0.9 * 1.0 * (
        1.0 + dg.BETA * (1.0 - 0.8) / (1.0 - dg.FAILURE_STIFFNESS))
    assert state.damage_rate(1.3, 0.9) == dg.DAMAGE_RATE['puncture_leak'] * 1.3 * 0.9 * (
        0.4 + dg.S0) ** 2


def test_sterilisation_heat_speeds_softening_and_delamination():
    env = dg.Environment(temperature=21.0)
    often = profiles.gains(profiles.Drivers(sterilisation_interval=500.0), env)
    rarely = profiles.gains(profiles.Drivers(sterilisation_interval=3000.0), env)
    assert often[0] > rarely[0] > 1.0
    assert often[1]['delamination_bulge'] > often[1]['crack_tear'] > 1.0


def test_radiation_embrittles_stiffer_and_cracks_faster():
    drivers = profiles.PROFILES['space'].drivers
    state = dg.Degradation(stiffness=0.9, damage=2, severity=0.3, cycles=0.0)
    profiles.start(state, drivers, dg.Environment(temperature=10.0, pressure=0.0))
    young_rate, young_physics = state.damage_rate(1.0, 1.0), dg.apply(state)[0]
    profiles.wear(state, drivers, dg.Environment(temperature=10.0, pressure=0.0), 1.0e5)
    assert state.embrittlement == pytest.approx(1 - np.exp(-1.0), rel=1e-9)
    old_physics = dg.apply(state)[0]
    assert np.all(old_physics.stiffness > young_physics.stiffness)
    assert np.all(old_physics.damping < young_physics.damping)
    assert state.damage_rate(1.0, 1.0) > 2.5 * young_rate


def test_microbes_grow_only_in_humid_air_and_stain_the_skin():
    from softmaint_sim.arm import Arm
    drivers = profiles.PROFILES['carbon_negative_buildings'].drivers
    dry, humid = (dg.Environment(humidity=h, co2=1500.0) for h in (0.5, 0.9))
    assert profiles.fouling_at(drivers, dry, 1e5) == pytest.approx(profiles.FOULING_SEED)
    assert profiles.fouling_at(drivers, humid, 1e5) > 0.9
    state = dg.Degradation(stiffness=0.9)
    profiles.start(state, drivers, humid)
    clean_gain = state.fatigue_gain
    profiles.wear(state, drivers, humid, 1e5)
    assert state.fouling > 0.9 and state.fatigue_gain > 2.0 * clean_gain
    arm = Arm(render=False)
    skin = arm.model.mat_rgba[arm.skin].copy()
    arm.apply(dg.apply(state)[0])
    stained = arm.model.mat_rgba[arm.skin]
    assert stained[1] / stained[0] > skin[1] / skin[0]             # greener
    assert stained[:3].sum() < skin[:3].sum()                        # and darker
    arm.apply(dg.apply(dg.Degradation())[0])
    assert np.array_equal(arm.model.mat_rgba[arm.skin], skin)


def test_scenario_profile_sets_the_allowed_environment():
    deep = {'name': 's', 'environment': {'pressure': 30000.0}}
    with pytest.raises(ScenarioError, match=r's.environment.pressure: must be in \[50.0, 120.0\]'):
        parse(deep, 's')
    assert parse({**deep, 'profile': 'deep_sea'}, 's').environment['pressure'] == 30000.0
    with pytest.raises(ScenarioError, match=r"s.profile: 'moon' is not allowed; allowed: "
                                            r"\['default', 'deep_sea'"):
        parse({'name': 's', 'profile': 'moon'}, 's')
    with pytest.raises(ScenarioError, match=r'events\[0\].environment.pressure: must be in'):
        parse({'name': 's', 'profile': 'space',
               'events': [{'at': 1.0, 'environment': {'pressure': 30000.0}}]}, 's')


@pytest.mark.slow
@pytest.mark.parametrize('name', ['deep_sea', 'medical', 'space', 'carbon_negative_buildings'])
def test_demo_scenarios_escalate_within_40_seconds(name):
    from softmaint_sim.live import timeline
    scenario = load(name)
    assert scenario.profile == name
    truth = [r.data for r in timeline(scenario, 40.0, every=5.0) if r.kind == 'truth']
    assert truth[0]['urgency'] == 0.0 and truth[0]['damage_type'] == 0
    assert max(t['urgency'] for t in truth) >= 0.8          # critical before the demo ends


def test_live_profile_scene_sensors_and_drivers():
    from softmaint_sim.live import LiveSim
    sim = LiveSim(replace(load('space'), events=[]), render=False)
    try:
        assert sim.noise == profiles.PROFILES['space'].noise
        assert sim.arm.model.vis.headlight.ambient.tolist() == [0.0, 0.0, 0.0]
        start = sim.state.embrittlement
        readings = [r for _ in range(150) for r in sim.step() if r.kind == 'environment']
        assert sim.state.embrittlement > start > 0.0
        assert np.isnan(readings[0].data['values'][[1, 2]]).all()
    finally:
        sim.close()
