"""Scenario files: strict validation with errors naming the field; the shipped scenarios."""
import copy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / 'config' / 'scenarios').glob('*.yaml'))
GOOD = {
    'name': 'good', 'domain': 'field', 'seed': 1, 'wear_acceleration': 100.0,
    'motion': {'frequency': 0.5, 'amplitude': [150.0, 83.0]},
    'environment': {'temperature': 22.0, 'humidity': 0.5, 'co2': 500.0, 'pressure': 101.0,
                    'drift': {'temperature': 0.01}},
    'initial': {'stiffness': 0.9, 'cycles': 100.0},
    'events': [
        {'at': 1.0, 'damage': 'crack_tear', 'severity': 0.2, 'location': 0.4},
        {'at': 2.0, 'environment': {'humidity': 0.8}},
        {'at': 3.0, 'sensor_fault': 'dead_taxels', 'taxels': [1, 2]},
        {'at': 4.0, 'sensor_fault': 'bias', 'modality': 'environment', 'quantity': 'co2',
         'value': 100.0, 'duration': 2.0},
    ],
}


def _edit(path, value):
    """GOOD with the field at `path` (keys and list indices) set to `value` (None deletes)."""
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


BAD = [
    # (field path, value, text the error must contain: the field, then what is allowed)
    (('name',), '', 's.name: is required and must be a non-empty string'),
    (('colour',), 'red', "s.colour: unknown field; allowed: ['description', 'domain'"),
    (('domain',), 'moon', "s.domain: 'moon' is not allowed; allowed: ['sim', 'field']"),
    (('seed',), 1.5, 's.seed: must be an integer in [0, 2147483647], got 1.5'),
    (('seed',), float('inf'), 's.seed: must be in [0, 2147483647], got inf'),
    (('wear_acceleration',), 'fast', 's.wear_acceleration: must be a number in [0.0, 1000000.0]'),
    (('wear_acceleration',), -1, 's.wear_acceleration: must be in [0.0, 1000000.0], got -1'),
    (('motion', 'frequency'), 9.0, 's.motion.frequency: must be in [0.05, 3.0], got 9.0'),
    (('motion', 'amplitude'), [250, 1],
     's.motion.amplitude: must be two peak chamber pressures in [0, 200] kPa'),
    (('motion', 'speed'), 1, "s.motion.speed: unknown field; allowed: ['amplitude', 'frequency']"),
    (('environment', 'humidity'), 1.5, 's.environment.humidity: must be in [0.0, 1.0], got 1.5'),
    (('environment', 'drift', 'wind'), 1.0,
     "s.environment.drift.wind: unknown field; allowed: ['co2', 'humidity', 'pressure'"),
    (('initial', 'stiffness'), 0.2, 's.initial.stiffness: must be in [0.45, 1.0], got 0.2'),
    (('events',), {'at': 1}, 's.events: must be a list of events'),
    (('events', 0, 'damage'), 'rust',
     "s.events[0].damage: 'rust' is not allowed; allowed: ['puncture_leak', 'crack_tear', "
     "'delamination_bulge', 'actuator_clog']"),
    (('events', 0, 'at'), None, 's.events[0].at: is required: a number in [0.0, 10000000.0]'),
    (('events', 0, 'side'), 2, 's.events[0].side: must be in [0, 1], got 2'),
    (('events', 0, 'modality'), 'camera',
     "s.events[0].modality: unknown field; allowed: ['at', 'damage', 'location', 'severity', "
     "'side']"),
    (('events', 1, 'environment'), {}, 's.events[1].environment: must set at least one of'),
    (('events', 1, 'damage'), 'crack_tear',
     "s.events[1]: needs exactly one of ['damage', 'environment', 'sensor_fault']; "
     "got ['damage', 'environment']"),
    (('events', 2, 'sensor_fault'), 'smoke',
     "s.events[2].sensor_fault: 'smoke' is not allowed; allowed: ['dropout', 'frozen', "
     "'bias', 'dead_taxels', 'saturation', 'lighting']"),
    (('events', 2, 'taxels'), [3, 8],
     's.events[2].taxels: must be a non-empty list of taxel indices 0..7, got [3, 8]'),
    (('events', 2, 'modality'), 'camera',
     "s.events[2].modality: 'camera' is not allowed; allowed: ['tactile']"),
    (('events', 2, 'value'), 1.0,
     "s.events[2].value: a dead_taxels fault takes no value; allowed only for ['bias', "
     "'lighting', 'saturation']"),
    (('events', 3, 'quantity'), 'wind',
     "s.events[3].quantity: 'wind' is not allowed; allowed: ['temperature', 'humidity', "
     "'co2', 'pressure']"),
    (('events', 3, 'modality'), 'camera',
     "s.events[3].modality: 'camera' is not allowed; allowed: ['tactile', 'proprio', "
     "'environment']"),
    (('events', 3, 'duration'), -1.0, 's.events[3].duration: must be in [0.0, 10000000.0]'),
]


def test_good_scenario_parses_with_every_value():
    from softmaint_sim.scenario import parse
    sc = parse(GOOD, 's')
    assert (sc.domain, sc.seed, sc.wear_acceleration, sc.amplitude) == (
        'field', 1, 100.0, (150.0, 83.0))
    assert sc.drift == {'temperature': 0.01} and sc.stiffness == 0.9
    assert [e.at for e in sc.events] == [1.0, 2.0, 3.0, 4.0]
    assert sc.events[2].taxels == (1, 2) and sc.events[2].modality == 'tactile'
    assert (sc.events[3].quantity, sc.events[3].value, sc.events[3].duration) == (
        'co2', 100.0, 2.0)


@pytest.mark.parametrize('path, value, message', BAD, ids=[
    '.'.join(map(str, p)) + f'={v!r}' for p, v, _ in BAD])
def test_every_bad_field_is_named_with_what_is_allowed(path, value, message):
    from softmaint_sim.scenario import parse, ScenarioError
    with pytest.raises(ScenarioError) as err:
        parse(_edit(path, value), 's')
    assert message in str(err.value)


def test_bad_files_and_names(tmp_path):
    from softmaint_sim.scenario import load, ScenarioError
    broken = tmp_path / 'broken.yaml'
    broken.write_text('name: [unclosed\n')
    with pytest.raises(ScenarioError, match='broken.yaml: not valid YAML'):
        load(str(broken))
    empty = tmp_path / 'empty.yaml'
    empty.write_text('')
    with pytest.raises(ScenarioError, match='empty.yaml: must be a mapping, got NoneType'):
        load(str(empty))
    with pytest.raises(ScenarioError, match='missing.yaml not found'):
        load(str(tmp_path / 'missing.yaml'))
    with pytest.raises(ScenarioError) as err:
        load('no_such_scenario')
    assert "'no_such_scenario' not found; available: [" in str(err.value)
    assert all(name in str(err.value) for name in SHIPPED)


def test_scenarios_dir_from_the_environment(tmp_path, monkeypatch):
    import yaml
    from softmaint_sim.scenario import load
    (tmp_path / 'mine.yaml').write_text(yaml.safe_dump({**GOOD, 'name': 'mine'}))
    monkeypatch.setenv('SOFTMAINT_SCENARIOS', str(tmp_path))
    assert load('mine').name == 'mine'


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_scenario_loads_and_runs(name):
    from softmaint_sim.live import LiveSim
    from softmaint_sim.scenario import load
    assert {'default', 'healthy', 'leak', 'sensor_faults'} <= set(SHIPPED)
    sc = load(name)
    assert sc.name == name and sc.description
    sim = LiveSim(sc, render=False)
    try:
        kinds = {r.kind for _ in range(120) for r in sim.step()}
    finally:
        sim.close()
    assert {'tactile', 'proprio', 'environment', 'truth'} <= kinds


@pytest.mark.slow
def test_default_scenario_escalates_within_90_seconds():
    """The demo: healthy first, then damage, critical urgency and a failure before 90 s."""
    from softmaint_core.taxonomy import CRITICAL_URGENCY
    from softmaint_sim.live import timeline
    from softmaint_sim.scenario import load
    truth = {round(r.stamp): r.data for r in timeline(load('default'), 90.0, every=1.0)
             if r.kind == 'truth'}
    assert all(truth[t]['damage_name'] == 'none' and truth[t]['urgency'] == 0.0
               for t in range(0, 20))
    # the crack starts below what the sensors can see, and is labelled once it grows past it
    assert truth[21]['damage_name'] == 'none' and truth[45]['damage_name'] == 'crack_tear'
    assert truth[56]['damage_name'] == 'puncture_leak' and 0.2 < truth[56]['urgency'] < 0.8
    first_critical = min(t for t, d in truth.items() if d['urgency'] >= CRITICAL_URGENCY)
    assert 55 < first_critical < 70
    assert truth[89]['urgency'] == 1.0 and truth[89]['damage_name'] == 'puncture_leak'
    urgency = [truth[t]['urgency'] for t in sorted(truth)]
    assert all(b >= a for a, b in zip(urgency, urgency[1:]))   # escalates, never relaxes


def test_healthy_scenario_stays_healthy_for_an_hour_of_wear():
    from softmaint_sim.degradation import acceleration, Degradation, Environment, load_factor
    from softmaint_sim.scenario import load
    sc = load('healthy')
    state = Degradation(cycles=sc.cycles, stiffness=sc.stiffness)
    accel, load_ = acceleration(Environment(**sc.environment)), load_factor(max(sc.amplitude))
    state.advance(3600 * sc.frequency * sc.wear_acceleration, accel, load_)
    labels = state.labels(accel, load_)
    assert labels['fatigue'] == 0 and labels['urgency'] == 0.0


def test_pacer_maps_simulated_time_and_re_anchors_on_rate_change():
    from softmaint_sim.live import Pacer
    pacer = Pacer(2.0, wall=100.0)
    assert pacer.due(101.0) == pytest.approx(2.0) and pacer.wall(3.0) == pytest.approx(101.5)
    pacer.set_rate(0.5, wall=101.0, sim=1.8)   # the sim was a bit behind: no burst after
    assert pacer.due(101.0) == pytest.approx(1.8) and pacer.due(103.0) == pytest.approx(2.8)
    assert pacer.wall(2.8) == pytest.approx(103.0)
