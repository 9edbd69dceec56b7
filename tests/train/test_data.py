"""Splits by episode, label fractions, calibration data, normalisation and masked inputs."""
import json

import numpy as np
import pytest
from softmaint_train.config import DataConfig
from softmaint_train.data import (calibration_source, calibration_windows, DataError,
                                  fit_normalisation, labelled_rows, make_inputs, make_splits,
                                  open_dataset, privileged_stats, privileged_targets, Windows)
from softmaint_train.losses import modality_dropout
from synthetic import make_dataset
from softmaint_core.window import default_sources, normalise


def test_splits_are_disjoint_by_episode_and_fixed(synthetic_root):
    ds = open_dataset(synthetic_root)
    episode, domain = ds.array('episode'), ds.array('domain')
    splits = make_splits(episode, domain, DataConfig())
    parts = [splits.teacher_train, splits.teacher_val, splits.field_train, splits.field_cal,
             splits.field_test]
    eps = [set(episode[p]) for p in parts]
    for i in range(len(eps)):
        for j in range(i + 1, len(eps)):
            assert not eps[i] & eps[j]
    assert sum(len(p) for p in parts) == len(ds)
    assert (domain[splits.teacher_train] == 0).all() and (domain[splits.field_test] == 1).all()
    again = make_splits(episode, domain, DataConfig())
    assert np.array_equal(again.field_test, splits.field_test)


def test_label_fraction_chooses_whole_episodes(synthetic_root):
    ds = open_dataset(synthetic_root)
    episode = ds.array('episode')
    splits = make_splits(episode, ds.array('domain'), DataConfig())
    n_eps = len(np.unique(episode[splits.field_train]))
    one = labelled_rows(splits.field_train, episode, 0.01, seed=0)
    assert len(np.unique(episode[one])) == 1                    # at least one episode
    half = labelled_rows(splits.field_train, episode, 0.5, seed=0)
    assert len(np.unique(episode[half])) == round(0.5 * n_eps)
    assert set(one) <= set(splits.field_train)
    other = labelled_rows(splits.field_train, episode, 0.5, seed=1)
    assert not np.array_equal(half, other)


@pytest.fixture(scope='module')
def calibration_root(tmp_path_factory):
    """A second synthetic dataset (another seed): separately generated calibration data."""
    return make_dataset(tmp_path_factory.mktemp('calibration') / 'data', episodes=20, seed=7)


def test_calibration_data_joins_field_cal(synthetic_root, calibration_root):
    ds, extra = open_dataset(synthetic_root), open_dataset(calibration_root)
    cfg = DataConfig(root=str(synthetic_root))
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg)
    alone = calibration_windows(ds, splits, calibration_source(ds, cfg))
    np.testing.assert_array_equal(alone.arrays['row'], splits.field_cal)
    joined = calibration_windows(ds, splits, calibration_source(ds, DataConfig(
        root=str(synthetic_root), calibration_root=str(calibration_root))))
    field = np.flatnonzero(extra.array('domain') == 1)
    assert len(joined) == len(splits.field_cal) + len(field) > len(alone)
    np.testing.assert_array_equal(joined.arrays['damage'], np.concatenate(
        [ds.take('damage', splits.field_cal), extra.take('damage', field)]))
    np.testing.assert_array_equal(joined.arrays['camera'][len(alone):],
                                  extra.take('field_camera', field))


def _with_card(root, tmp_path, **changes):
    copy = tmp_path / 'copy'
    copy.mkdir()
    for path in root.iterdir():
        (copy / path.name).symlink_to(path)
    card = json.loads((root / 'card.json').read_text())
    (copy / 'card.json').unlink()
    (copy / 'card.json').write_text(json.dumps({**card, **changes}))
    return copy


def _no_field_windows(tmp_path):
    root = make_dataset(tmp_path / 'sim-only', episodes=6, seed=8)
    for shard in (root / 'shards').glob('shard-*'):
        domain = shard / 'domain.npy'
        np.save(domain, np.zeros_like(np.load(domain)))
    return root


@pytest.mark.parametrize('which, message', [
    ('training', 'seed of'),
    ('training seed, fewer episodes', 'seed of'),
    ('other generator', 'generator_version differ'),
    ('no field window', 'no field-domain window'),
])
def test_calibration_data_that_is_not_separate_field_data_is_refused(
        synthetic_root, calibration_root, tmp_path, which, message):
    ds = open_dataset(synthetic_root)
    root = {'training': lambda: synthetic_root,
            'training seed, fewer episodes': lambda: make_dataset(tmp_path / 'same', episodes=8),
            'other generator': lambda: _with_card(calibration_root, tmp_path,
                                                  generator_version='9.9.9'),
            'no field window': lambda: _no_field_windows(tmp_path)}[which]()
    cfg = DataConfig(root=str(synthetic_root), calibration_root=str(root))
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg)
    with pytest.raises(DataError, match=message):
        calibration_source(ds, cfg)


def test_normalisation_and_masked_zeros(synthetic_root):
    ds = open_dataset(synthetic_root)
    w = Windows.load(ds, 'field', np.arange(len(ds)))
    stats = fit_normalisation(w)
    cam = w.arrays['camera'][w.arrays['mask'][:, 0]].astype(np.float64) / 255.0
    assert stats['camera'][0] == pytest.approx(cam.mean(axis=(0, 1, 3, 4)), abs=1e-6)
    assert stats['camera'][1] == pytest.approx(cam.std(axis=(0, 1, 3, 4)), abs=1e-5)
    inputs, mask = make_inputs(w, np.arange(len(w)), stats)
    tac = inputs['tactile'][mask[:, 1] > 0].numpy()
    assert tac.mean(axis=(0, 1)) == pytest.approx(np.zeros(8), abs=1e-4)
    assert (inputs['tactile'][mask[:, 1] == 0] == 0).all()
    only_camera, m = make_inputs(w, np.arange(10), stats, mask=[True, False, False, False])
    assert (m[:, 1:] == 0).all() and (only_camera['proprio'] == 0).all()


def test_unsensed_environment_reads_as_the_training_mean_as_onboard(synthetic_root):
    """A profile without a humidity or CO2 sensor records NaN; training must read it as the
    robot does (the spec's training mean, i.e. 0 after normalisation), not learn from NaN."""
    ds = open_dataset(synthetic_root)
    w = Windows.load(ds, 'field', np.arange(len(ds)))
    env = w.arrays['environment']
    env[:, :, 2] = np.nan                     # CO2 never sensed
    env[::2, :, 1] = np.nan                   # humidity sensed by half of the robots
    stats = fit_normalisation(w)
    sensed = w.arrays['mask'][:, 3]
    humidity = env[sensed & ~np.isnan(env[:, 0, 1]), :, 1].astype(np.float64)
    assert stats['environment'][0][1] == pytest.approx(humidity.mean(), rel=1e-6)
    assert stats['environment'][0][2] == 0.0 and stats['environment'][1][2] == 1.0
    assert np.isfinite(stats['environment']).all()
    inputs, _ = make_inputs(w, np.arange(len(w)), stats)
    x = inputs['environment'].numpy()
    assert np.isfinite(x).all() and (x[:, :, 2] == 0).all()
    spec = w.spec.with_normalisation(stats)
    source = next(s for s in default_sources(spec) if s.name == 'environment')
    row = int(np.flatnonzero(sensed & np.isnan(env[:, 0, 1]))[0])
    onboard = np.where(np.isnan(env[row]), np.asarray(source.unsensed_fill, np.float32), env[row])
    assert np.allclose(normalise(spec.modality('environment'), onboard), x[row], atol=1e-6)


def test_privileged_targets_by_hand():
    # one column spanning orders of magnitude: median |x| = 10
    x = np.array([[-10.0], [1.0], [10.0], [1000.0]], np.float32)
    scale, mean, std = privileged_stats(x, 'raw')
    assert (mean, std) == (pytest.approx(250.25), pytest.approx(x.std()))
    assert privileged_targets(x, (scale, mean, std), 'raw')[:, 0] == pytest.approx(
        (x[:, 0] - 250.25) / x.std(), rel=1e-5)
    # signed log: sign(x) ln(1 + |x| / 10) = -ln 2, ln 1.1, ln 2, ln 101
    logged = np.array([-np.log(2), np.log(1.1), np.log(2), np.log(101)])
    stats = privileged_stats(x, 'signed_log')
    assert stats[0] == pytest.approx([10.0]) and stats[1] == pytest.approx([logged.mean()])
    targets = privileged_targets(x, stats, 'signed_log')[:, 0]
    assert targets == pytest.approx((logged - logged.mean()) / logged.std(), rel=1e-5)
    assert targets.max() < 2.0          # the outlier no longer dominates the loss


def test_modality_dropout_keeps_one():
    rng = np.random.default_rng(0)
    mask = np.ones((500, 4), bool)
    mask[0] = [False, True, False, False]
    mask[1] = False
    kept = modality_dropout(mask, 0.9, rng)
    assert kept[2:].any(axis=1).all()
    assert kept[0].tolist() == [False, True, False, False]
    assert not kept[1].any()
    assert not (kept & ~mask).any()
    assert 0.05 < kept[2:].mean() < 0.4
