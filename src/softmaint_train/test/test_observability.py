"""
Tests of the observability probe (softmaint-train observability) on a planted dataset.

The dataset is synthetic, not the simulator: the damage label is a deterministic function of
one privileged column (spanning five orders of magnitude, like RUL or cycles) and of one tactile
channel, the urgency a function of the damage class, the fatigue always low; everything else
is noise. Both probes must learn them, and fall to chance when the training labels are
shuffled.
"""
import json

import numpy as np
import pytest
from softmaint_core.dataset import write_shard
from softmaint_train.cli import main
from softmaint_train.observability import (downsample_frames, implied_levels,
                                           ObservabilityError, privileged_features,
                                           ProbeConfig, run, split_episodes, train_probe)
import torch
from torch import nn

EPISODES = 400
WINDOWS = 2          # windows per episode: the split must keep an episode's windows together
SIGNAL_CHANNEL = 3   # tactile channel that carries the damage class


def _arrays(episodes: int, seed: int, with_privileged: bool = True):
    rng = np.random.default_rng(seed)
    ep = np.repeat(np.arange(episodes), WINDOWS)
    n = len(ep)
    damage = rng.integers(0, 5, episodes)[ep]
    tactile = rng.normal(0.0, 1.0, (n, 6, 5)).astype(np.float32)
    tactile[:, :, SIGNAL_CHANNEL] = 2.0 * damage[:, None] + rng.normal(0, 0.3, (n, 6))
    environment = rng.normal(20.0, 1.0, (n, 2, 3)).astype(np.float32)
    environment[:, :, 2] = np.nan                      # a quantity this robot does not sense
    arrays = {
        'teacher_camera': rng.integers(0, 256, (n, 4, 3, 8, 8)).astype(np.uint8),
        'teacher_tactile': tactile,
        'teacher_proprio': rng.normal(0.0, 1.0, (n, 6, 4)).astype(np.float32),
        'teacher_environment': environment,
        'damage': damage.astype(np.int64),
        'fatigue': np.zeros(n, np.int64),      # low: the maintenance level follows the rest
        'urgency': np.clip(0.22 * damage + rng.normal(0, 0.02, n), 0, 1).astype(np.float32),
        'domain': (ep % 3 == 0).astype(np.int64),
        'episode': ep.astype(np.int64),
    }
    if with_privileged:
        planted = 10.0 ** (damage + 1) * rng.uniform(0.5, 2.0, n)  # 5 .. 2e5
        arrays['privileged'] = np.stack(
            [rng.uniform(0.45, 1.0, n), planted, np.minimum(rng.exponential(3e5, n), 1e6)],
            axis=1).astype(np.float32)
    return arrays


def make_planted_dataset(root, episodes: int = EPISODES, seed: int = 0, **kwargs):
    """Write a two-shard dataset with the planted damage label and a card; return its root."""
    arrays = _arrays(episodes, seed, **kwargs)
    half = len(arrays['episode']) // 2
    write_shard(root, 0, {k: v[:half] for k, v in arrays.items()})
    write_shard(root, 1, {k: v[half:] for k, v in arrays.items()})
    (root / 'card.json').write_text(json.dumps({
        'generator': 'test_observability (planted, not the simulator)',
        'generator_version': '0.0-test', 'episodes': episodes}))
    return root


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
    """Write the planted dataset shared by the tests of this module."""
    return make_planted_dataset(tmp_path_factory.mktemp('observability') / 'data')


def test_split_is_by_episode_stratified_and_seeded():
    rng = np.random.default_rng(1)
    episode = np.repeat(np.arange(200), 3)
    damage = np.repeat(rng.integers(0, 5, 200), 3)
    train, test = split_episodes(episode, damage, 0.2, seed=7)
    assert len(np.intersect1d(episode[train], episode[test])) == 0
    assert len(train) + len(test) == len(episode)
    assert len(np.unique(episode[test])) == pytest.approx(40, abs=3)
    for cls in range(5):
        eps = np.unique(episode[damage == cls])
        held = np.unique(episode[test][damage[test] == cls])
        assert len(held) == int(round(0.2 * len(eps)))
    again = split_episodes(episode, damage, 0.2, seed=7)
    assert np.array_equal(test, again[1])
    assert not np.array_equal(test, split_episodes(episode, damage, 0.2, seed=8)[1])


def test_downsample_frames_strides_and_average_pools():
    frames = np.zeros((1, 4, 1, 4, 4), dtype=np.uint8)
    frames[0, 0, 0, :2, :2] = [[10, 20], [30, 40]]
    frames[0, 1] = 255
    out = downsample_frames(frames, stride=2, pool=2)
    assert out.shape == (1, 2, 1, 2, 2) and out.dtype == np.uint8
    assert out[0, 0, 0, 0, 0] == 25 and out[0, 0, 0, 1, 1] == 0
    assert out[0, 1].max() == 0  # frame 1 (all 255) is skipped by the stride


def test_privileged_features_fit_on_train_and_tame_huge_columns():
    x = np.stack([np.geomspace(1.0, 1e6, 100), np.linspace(0.4, 1.0, 100)], 1)
    train = np.arange(0, 100, 2)
    out = privileged_features(x.astype(np.float32), train)
    assert np.isfinite(out).all() and np.abs(out).max() < 5
    assert (np.diff(out[:, 0]) > 0).all()  # the order of the huge column is kept
    assert abs(out[train].mean(axis=0)).max() < 1e-4
    test_rows = privileged_features(x.astype(np.float32), np.arange(1, 100, 2))
    assert not np.allclose(test_rows, out)  # the stats come from the rows given as train


def test_probes_learn_planted_label_and_fall_to_chance_when_shuffled(planted):
    cfg = ProbeConfig(seeds=(0,), epochs=15, privileged_epochs=40, progress=False)
    summary = run(planted, cfg)
    assert summary['test_episodes'] == pytest.approx(0.2 * EPISODES, abs=3)
    assert summary['privileged_damage_f1'] > 0.9
    assert summary['sensors_damage_f1'] > 0.9
    assert summary['sensors_damage_f1_field'] > 0.85
    assert summary['sensors_urgency_mae'] < 0.1 and summary['sensors_decision_accuracy'] > 0.9
    cfg.shuffle_labels = True
    control = run(planted, cfg)
    assert control['test_episodes'] == summary['test_episodes']
    for probe in ('privileged', 'sensors'):
        assert control[f'{probe}_damage_f1'] < control['chance_damage_f1'] + 0.2
        assert control[f'{probe}_urgency_mae'] > 0.2
        assert control[f'{probe}_decision_accuracy'] < 0.7


def test_implied_levels_by_hand():
    # fatigue, damage, urgency -> the level the default thresholds (0.4, 0.6, 0.8) imply
    values = {'fatigue': np.array([0, 1, 0, 2, 0, 0]), 'damage': np.array([0, 0, 1, 0, 0, 0]),
              'urgency': np.array([0.1, 0.1, 0.1, 0.1, 0.5, 0.85])}
    assert implied_levels(values).tolist() == [0, 1, 2, 2, 1, 3]


def test_non_finite_loss_stops_with_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(2, 5)

        def forward(self, batch):
            return {'damage': self.w(batch['x']) * float('nan')}

    inputs = {'x': torch.ones(8, 2)}
    targets = {'damage': torch.zeros(8, dtype=torch.int64)}
    cfg = ProbeConfig(batch_size=4, progress=False)
    with pytest.raises(ObservabilityError, match='broken seed 0: non-finite loss'):
        train_probe(Broken(), inputs, targets, np.arange(8), 2, cfg, 0, 'broken seed 0')


def test_cli_writes_summary_report_and_plot(planted, tmp_path, capsys):
    out = tmp_path / 'report'
    rc = main(['observability', '--data', str(planted), '--out', str(out), '--seeds', '0', '1',
               '--epochs', '2', '--privileged-epochs', '3', '--max-episodes', '150',
               '--no-progress'])
    assert rc == 0
    s = json.loads((out / 'summary.json').read_text())
    for key in ('privileged_damage_f1', 'sensors_damage_f1'):
        assert isinstance(s[key], float) and 0.0 <= s[key] <= 1.0
        assert len(s[f'{key}_per_seed']) == 2
        assert s[key] == pytest.approx(np.mean(s[f'{key}_per_seed']))
    assert s['episodes'] == 150 and s['test_episodes'] == pytest.approx(30, abs=3)
    assert s['generator_version'] == '0.0-test' and s['data'] == str(planted)
    assert s['seeds'] == [0, 1] and s['epochs'] == {'privileged': 3, 'sensors': 2}
    assert s['wall_seconds'] > 0 and '--max-episodes 150' in s['command']
    for probe in ('privileged', 'sensors'):
        assert np.sum(s[f'{probe}_confusion']) == 2 * s['test_windows']
        assert set(s[f'{probe}_damage_f1_per_class']) == set(s['damage_classes'])
        assert len(s[f'{probe}_fatigue_f1_per_seed']) == 2
    assert s['inputs']['camera'] == [2, 3, 4, 4]  # every other frame, pooled 2 x 2
    assert '| sensors |' in (out / 'summary.md').read_text()
    assert (out / 'confusion.png').read_bytes()[:4] == b'\x89PNG'
    assert 'report' in capsys.readouterr().out


def test_cli_stops_with_an_error_when_arrays_are_missing(tmp_path, capsys):
    root = make_planted_dataset(tmp_path / 'data', episodes=20, with_privileged=False)
    rc = main(['observability', '--data', str(root), '--out', str(tmp_path / 'r'),
               '--no-progress'])
    assert rc == 1
    assert "lacks arrays ['privileged']" in capsys.readouterr().err
    assert not (tmp_path / 'r').exists()


def test_field_view_probe_reads_the_field_sensors_not_the_teachers(tmp_path, capsys):
    # the planted signal lives only in the field view; its window mask is not a sensor
    arrays = _arrays(300, seed=1)
    rng = np.random.default_rng(2)
    for name in ('camera', 'tactile', 'proprio', 'environment'):
        arrays[f'field_{name}'] = arrays[f'teacher_{name}']
    arrays['teacher_tactile'] = rng.normal(0.0, 1.0, arrays['teacher_tactile'].shape).astype(
        np.float32)
    arrays['field_mask'] = np.ones((len(arrays['episode']), 4), dtype=bool)
    write_shard(tmp_path / 'data', 0, arrays)
    (tmp_path / 'data' / 'card.json').write_text(json.dumps({'episodes': 300}))
    f1 = {}
    for view in ('teacher', 'field'):
        out = tmp_path / view
        assert main(['observability', '--data', str(tmp_path / 'data'), '--out', str(out),
                     '--seeds', '0', '--epochs', '15', '--privileged-epochs', '1', '--view',
                     view, '--frame-stride', '1', '--frame-pool', '1', '--no-progress']) == 0
        s = json.loads((out / 'summary.json').read_text())
        assert s['view'] == view and f'--view {view}' in s['command']
        assert 'mask' not in s['inputs'] and s['inputs']['camera'] == [4, 3, 8, 8]
        f1[view] = s['sensors_damage_f1']
    assert f1['field'] > 0.9 and f1['teacher'] < 0.5, f1


def test_modalities_option_reads_only_those(planted, tmp_path, capsys):
    # the planted damage lives in tactile: the camera alone falls to chance, tactile alone not
    f1 = {}
    for only in ('camera', 'tactile'):
        out = tmp_path / only
        assert main(['observability', '--data', str(planted), '--out', str(out), '--seeds', '0',
                     '--epochs', '15', '--privileged-epochs', '1', '--modalities', only,
                     '--no-progress']) == 0
        s = json.loads((out / 'summary.json').read_text())
        assert s['modalities'] == [only] and f'--modalities {only}' in s['command']
        assert set(s['inputs']) == {'privileged', only}
        assert f'reads only {only}' in (out / 'summary.md').read_text()
        f1[only] = s['sensors_damage_f1']
    assert f1['tactile'] > 0.9 and f1['camera'] < s['chance_damage_f1'] + 0.2, f1
    assert main(['observability', '--data', str(planted), '--out', str(tmp_path / 'x'),
                 '--modalities', 'sonar', '--no-progress']) == 1
    assert "the teacher view has no modality ['sonar']" in capsys.readouterr().err
