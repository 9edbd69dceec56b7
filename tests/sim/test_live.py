"""LiveSim (the sim robot without ROS): rates, sensor faults and damage as the node sees them."""
import numpy as np
import pytest


def _run(events, seconds, render=True, **scenario):
    """Readings of a scenario with `events`, grouped by kind: {kind: [(stamp, data)]}."""
    from softmaint_sim.live import LiveSim
    from softmaint_sim.scenario import parse
    sim = LiveSim(parse({'name': 'test', 'seed': 2, 'events': events, **scenario}),
                  render=render)
    out = {}
    try:
        while sim.time < seconds - 1e-9:
            for r in sim.step():
                out.setdefault(r.kind, []).append((r.stamp, r.data))
    finally:
        sim.close()
    return out


def _between(readings, start, end, key):
    return np.array([d[key] for t, d in readings if start <= t < end])


def test_rates_and_stamps():
    out = _run([], 2.0)
    assert [round(t, 6) for t, _ in out['camera']] == [round(0.2 * k, 6) for k in range(10)]
    assert len(out['tactile']) == len(out['proprio']) == 200
    assert [t for t, _ in out['environment']] == [0.0, 1.0] == [t for t, _ in out['truth']]
    frame = out['camera'][0][1]['image']
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert np.isfinite(_between(out['tactile'], 0, 2, 'taxels')).all()


def test_dead_taxels_frozen_tactile_and_saturation():
    out = _run([{'at': 0.5, 'sensor_fault': 'dead_taxels', 'taxels': [2, 6]},
                {'at': 1.0, 'sensor_fault': 'frozen', 'modality': 'tactile', 'duration': 0.5},
                {'at': 2.0, 'sensor_fault': 'saturation', 'value': 0.2}], 2.5, render=False)
    taxels = out['tactile']
    before, dead = _between(taxels, 0, 0.5, 'taxels'), _between(taxels, 0.5, 1.0, 'taxels')
    assert np.isfinite(before).all()
    assert np.isnan(dead[:, [2, 6]]).all() and np.isfinite(np.delete(dead, [2, 6], 1)).all()
    frozen = _between(taxels, 1.0, 1.5, 'taxels')
    assert (np.nan_to_num(frozen) == np.nan_to_num(frozen[0])).all()
    after = _between(taxels, 1.5, 2.0, 'taxels')
    assert len({tuple(np.nan_to_num(row)) for row in after}) > 10   # moving again
    saturated = np.delete(_between(taxels, 2.0, 2.5, 'taxels'), [2, 6], 1)
    assert saturated.max() <= 0.2 and before.max() > 0.2


def test_dropout_and_lighting_on_the_camera():
    out = _run([{'at': 0.4, 'sensor_fault': 'dropout', 'modality': 'camera', 'duration': 0.6},
                {'at': 1.4, 'sensor_fault': 'lighting', 'value': 0.5}], 2.0)
    stamps = [round(t, 6) for t, _ in out['camera']]
    assert stamps == [0.0, 0.2, 1.0, 1.2, 1.4, 1.6, 1.8]
    brightness = {round(t, 6): d['image'].mean() for t, d in out['camera']}
    assert brightness[1.6] / brightness[1.2] == pytest.approx(0.5, abs=0.1)


def test_bias_faults_offset_their_quantity():
    events = [{'at': 1.0, 'sensor_fault': 'bias', 'modality': 'environment',
               'quantity': 'humidity', 'value': 0.3},
              {'at': 1.0, 'sensor_fault': 'bias', 'modality': 'proprio', 'value': 0.5}]
    out = _run(events, 6.0, render=False,
               environment={'temperature': 20.0, 'humidity': 0.4, 'co2': 800.0,
                            'pressure': 100.0})
    env = np.array([d['values'] for _, d in out['environment']])
    assert env[0, 1] == pytest.approx(0.4, abs=0.06)
    assert env[1:, 1].mean() == pytest.approx(0.7, abs=0.04)
    assert env[1:, 0].mean() == pytest.approx(20.0, abs=0.5)   # other quantities unchanged
    bend = _between(out['proprio'], 0.0, 6.0, 'bend')
    clean, biased = bend[:100], bend[400:500]   # the same phase of the 2 s motion cycle
    assert biased.mean(axis=0) - clean.mean(axis=0) == pytest.approx([0.5] * 4, abs=0.05)


def test_proprio_dropout_and_frozen_environment():
    out = _run([{'at': 0.5, 'sensor_fault': 'dropout', 'modality': 'proprio', 'duration': 0.5},
                {'at': 0.5, 'sensor_fault': 'frozen', 'modality': 'environment'}], 4.0,
               render=False, environment={'temperature': 20.0, 'humidity': 0.4, 'co2': 800.0,
                                          'pressure': 100.0, 'drift': {'co2': 100.0}})
    stamps = np.array([t for t, _ in out['proprio']])
    assert len(stamps) == 350 and not ((stamps >= 0.5) & (stamps < 1.0 - 1e-9)).any()
    env = np.array([d['values'] for _, d in out['environment']])
    assert (env[1:] == env[1]).all() and len(env) == 4   # stuck while CO2 rises 100 ppm/s


def test_leak_event_lowers_achieved_force_live():
    out = _run([{'at': 2.0, 'damage': 'puncture_leak', 'severity': 0.8, 'side': 0}], 4.0,
               render=False, motion={'frequency': 0.5, 'amplitude': [18.0, 10.0]})

    def gain(start):
        command = _between(out['proprio'], start, start + 2.0, 'command')[:, 0]
        achieved = _between(out['proprio'], start, start + 2.0, 'achieved')[:, 0]
        return np.dot(achieved, command) / np.dot(command, command)

    assert gain(0.0) == pytest.approx(1.0, abs=0.05) and gain(2.0) < 0.8
    events = out['event']
    assert [t for t, _ in events] == [2.0]
    assert events[0][1]['text'] == ('damage puncture_leak starts: severity 0.80 at 50% of '
                                    'the arm, side 0')
    truth = [(t, d['damage_name']) for t, d in out['truth']]
    assert truth == [(0.0, 'none'), (1.0, 'none'), (2.0, 'puncture_leak'),
                     (3.0, 'puncture_leak')]


def test_failure_is_terminal():
    out = _run([{'at': 0.0, 'damage': 'crack_tear', 'severity': 0.95}], 4.0, render=False,
               wear_acceleration=5000.0)
    truth = [d for _, d in out['truth']]
    assert truth[-1]['urgency'] == 1.0 and truth[-1]['damage_severity'] == 1.0
    failed = [d for d in truth if d['remaining_useful_life'] == 0.0]
    assert len(failed) >= 2 and len({d['cycles'] for d in failed}) == 1   # wear stopped


def test_an_emergency_stop_holds_the_chambers_and_ends_the_wear():
    from softmaint_sim.episode import BASE_PRESSURE
    from softmaint_sim.live import LiveSim
    from softmaint_sim.scenario import parse
    sim = LiveSim(parse({'name': 'test', 'seed': 2, 'events': [], 'wear_acceleration': 50.0}),
                  render=False)
    try:
        def run(seconds):
            commands, cycles = [], []
            end = sim.time + seconds
            while sim.time < end - 1e-9:
                for r in sim.step():
                    if r.kind == 'proprio':
                        commands.append(r.data['command'])
                cycles.append(sim.state.cycles)
            return np.array(commands), np.array(cycles)
        moving, wear = run(1.0)
        assert moving.max() > BASE_PRESSURE + 10 and wear[-1] > wear[0]
        sim.emergency_stop()
        stopped_at = sim.stopped_at
        sim.emergency_stop()                       # a repeated call keeps the first stop
        held, wear = run(1.0)
        assert sim.stopped_at == stopped_at == pytest.approx(1.0)
        np.testing.assert_allclose(held, BASE_PRESSURE)
        assert (wear == wear[0]).all()
    finally:
        sim.close()
