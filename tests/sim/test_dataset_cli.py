"""softmaint-dataset: deterministic per seed, resumable after a crash, with an honest card."""
import json
import os
import re
from pathlib import Path
import signal
import subprocess
import sys

import numpy as np
from polling import wait_for
import pytest

CLI = [sys.executable, '-m', 'softmaint_sim.dataset_cli']


def _arrays(root):
    from softmaint_core import dataset as ds
    data = ds.Dataset(root)
    return {name: data.array(name) for name in data.names}


def _generate(root, episodes, seed, workers=1, shard_size=2):
    from softmaint_sim import dataset_cli
    return dataset_cli.generate(Path(root), episodes=episodes, seed=seed, workers=workers,
                                field_fraction=0.5, shard_size=shard_size, progress=False)


def test_same_seed_same_dataset_other_seed_other_dataset(tmp_path):
    _generate(tmp_path / 'a', 5, seed=11)
    _generate(tmp_path / 'b', 5, seed=11, shard_size=5)   # sharding does not change episodes
    _generate(tmp_path / 'c', 5, seed=12)
    a, b, c = (_arrays(tmp_path / n) for n in 'abc')
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a['field_tactile'], c['field_tactile'])
    assert not np.array_equal(a['teacher_camera'], c['teacher_camera'])
    assert a['episode'].tolist() == list(range(5))


def test_a_regenerated_dataset_has_the_digest_model_cards_pin(tmp_path):
    from softmaint_core.dataset import card_digest
    _generate(tmp_path / 'a', 4, seed=11)
    _generate(tmp_path / 'again', 4, seed=11, workers=2)
    _generate(tmp_path / 'other', 4, seed=12)
    cards = [json.loads((tmp_path / n / 'card.json').read_text()) for n in ('a', 'again')]
    assert cards[0]['workers'] != cards[1]['workers']     # the files differ ...
    assert card_digest(tmp_path / 'a') == card_digest(tmp_path / 'again')   # ... the data not
    assert card_digest(tmp_path / 'a') != card_digest(tmp_path / 'other')
    assert card_digest(tmp_path / 'missing') == ''
    done = subprocess.run(CLI + ['card', '--digest', str(tmp_path / 'again')],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == card_digest(tmp_path / 'a')


def _worker_pids(parent: int):
    """Pool worker processes of `parent` (not multiprocessing's resource tracker)."""
    children = Path(f'/proc/{parent}/task/{parent}/children').read_text().split()
    return [int(pid) for pid in children
            if 'resource_tracker' not in Path(f'/proc/{pid}/cmdline').read_text()]


@pytest.mark.slow
def test_killed_worker_leaves_finished_shards_and_a_rerun_completes_exactly(tmp_path):
    from softmaint_core import dataset as ds
    out = tmp_path / 'crashed'
    args = ['generate', '--out', str(out), '--episodes', '30', '--seed', '5',
            '--field-fraction', '0.5', '--shard-size', '2', '--no-progress']
    run = subprocess.Popen([*CLI, *args, '--workers', '2'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: ds.completed_shards(out), 120), 'no shard was written'
        workers = _worker_pids(run.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, stderr
    assert 'a worker process died' in stderr and 'rerun the same command' in stderr
    finished = {i: (out / 'shards' / ds.shard_name(i)).stat().st_ino
                for i in ds.completed_shards(out)}
    assert 0 < len(finished) < 15, 'the run was not interrupted'
    assert not json.loads((out / 'card.json').read_text())['complete']
    with pytest.raises(ds.DatasetError, match='incomplete'):
        from softmaint_sim.dataset_cli import load
        load(out)
    # a crash in the middle of writing a shard leaves a temporary directory behind
    partial = out / 'shards' / '.tmp-shard-00014-99999'
    partial.mkdir()
    (partial / 'episode.npy').write_bytes(b'half a file')

    rerun = subprocess.run([*CLI, *args, '--workers', '1'], capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    # ours, and the killed worker's own if it died while writing one
    assert re.search(r'removed [12] partial shard\(s\)', rerun.stderr), rerun.stderr
    assert not partial.exists()
    for i, inode in finished.items():   # finished shards were kept, not regenerated
        assert (out / 'shards' / ds.shard_name(i)).stat().st_ino == inode
    card = json.loads((out / 'card.json').read_text())
    assert card['complete'] and card['counts']['episodes'] == 30
    resumed = _arrays(out)
    assert resumed['episode'].tolist() == list(range(30))   # no episode twice, none missing
    _generate(tmp_path / 'reference', 30, seed=5)
    reference = _arrays(tmp_path / 'reference')
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)


def test_card_describes_the_dataset(small_dataset):
    from softmaint_core import dataset as ds
    from softmaint_core.spec import FIELD_SPEC, MODALITIES, TEACHER_SPEC
    from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
    from softmaint_sim.episode import GENERATOR_VERSION, PRIVILEGED_COLUMNS
    printed = subprocess.run([*CLI, 'card', str(small_dataset)], capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0
    card = json.loads(printed.stdout)
    data = _arrays(small_dataset)
    assert card['complete'] and card['generator_version'] == GENERATOR_VERSION
    assert card['seed'] == 3 and card['parameters'] == {
        'generator_version': GENERATOR_VERSION, 'episodes': 12, 'seed': 3,
        'field_fraction': 0.5, 'shard_size': 5, 'teacher_spec_id': TEACHER_SPEC.spec_id,
        'field_spec_id': FIELD_SPEC.spec_id}
    counts = card['counts']
    assert counts['episodes'] == 12
    assert counts['fatigue'] == {n: int((data['fatigue'] == i).sum())
                                 for i, n in enumerate(FATIGUE_LEVELS)}
    assert counts['damage'] == {n: int((data['damage'] == i).sum())
                                for i, n in enumerate(DAMAGE_TYPES)}
    assert counts['domain'] == {'sim': int((data['domain'] == 0).sum()),
                                'field': int((data['domain'] == 1).sum())}
    assert counts['domain']['field'] > 0 and counts['domain']['sim'] > 0
    assert counts['field_modality_available'] == {
        m: int(data['field_mask'][:, i].sum()) for i, m in enumerate(MODALITIES)}
    for name, shape in card['arrays'].items():
        if name != 'labels':
            assert list(data[name].shape[1:]) == shape, name
    assert card['privileged_columns'] == list(PRIVILEGED_COLUMNS)
    assert data['privileged'].shape[1] == len(PRIVILEGED_COLUMNS)
    assert card['shards'] == [ds.shard_name(i) for i in range(3)]
    assert set(card['physics']['geometry']) == {'sim', 'field'}
    assert card['physics']['rate_laws']['DAMAGE_RATE']['crack_tear'] > 0
    assert card['classes'] == {'fatigue': list(FATIGUE_LEVELS), 'damage': list(DAMAGE_TYPES)}


def test_refuses_other_arguments_on_an_existing_dataset_and_bad_values(small_dataset, tmp_path):
    def run(*args):
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)

    other = run('generate', '--out', str(small_dataset), '--episodes', '12', '--seed', '4',
                '--field-fraction', '0.5', '--shard-size', '5', '--workers', '1')
    assert other.returncode == 2
    assert 'seed: existing 3 vs requested 4' in other.stderr
    assert 'rerun with the same arguments to resume' in other.stderr
    (tmp_path / 'junk').mkdir()
    (tmp_path / 'junk' / 'notes.txt').write_text('mine')
    junk = run('generate', '--out', str(tmp_path / 'junk'), '--episodes', '2', '--seed', '1')
    assert junk.returncode == 2 and 'is not empty and has no card.json' in junk.stderr
    for flag, value, text in (('--episodes', '0', '--episodes must be >= 1'),
                              ('--field-fraction', '1.5', '--field-fraction must be in [0, 1]'),
                              ('--workers', '0', '--workers must be >= 1'),
                              ('--seed', '-1', '--seed must be >= 0'),
                              ('--shard-size', '0', '--shard-size must be >= 1')):
        args = {'--episodes': '2', '--field-fraction': '0.1', '--workers': '1', flag: value}
        bad = run('generate', '--out', str(tmp_path / 'new'), '--seed', '1',
                  *[x for kv in args.items() for x in kv])
        assert bad.returncode == 2 and text in bad.stderr, bad.stderr
    assert not (tmp_path / 'new').exists()
    shards = run('generate', '--out', str(tmp_path / 'new'), '--episodes', '2', '--seed', '1',
                 '--shard-size', '0', '--shards', '0:1')
    assert shards.returncode == 2 and '--shard-size must be >= 1' in shards.stderr
    missing = run('card', str(tmp_path / 'nothing'))
    assert missing.returncode == 2 and 'generate the dataset first' in missing.stderr
    (tmp_path / 'afile').write_text('mine')
    afile = run('generate', '--out', str(tmp_path / 'afile'), '--episodes', '1', '--seed', '1')
    assert afile.returncode == 2 and 'afile is a file: --out must be a directory' in afile.stderr
    for card in ('{', '[]'):
        (tmp_path / 'odd').mkdir(exist_ok=True)
        (tmp_path / 'odd' / 'card.json').write_text(card)
        odd = run('generate', '--out', str(tmp_path / 'odd'), '--episodes', '1', '--seed', '1')
        assert odd.returncode == 2 and 'odd/card.json is not a' in odd.stderr, odd.stderr
    for start in ('-5', '1e11', 'nan'):
        late = run('export-bag', str(small_dataset), '--episodes', '0', '--out',
                   str(tmp_path / 'bag'), '--start', start)
        assert late.returncode == 2 and '--start must be seconds since the epoch' in late.stderr
    assert not (tmp_path / 'bag').exists()


def test_a_rerun_without_the_profile_does_not_resume_a_profile_dataset(tmp_path):
    from softmaint_sim import dataset_cli
    common = dict(episodes=2, seed=1, workers=1, field_fraction=0.5, shard_size=1,
                  progress=False)
    dataset_cli.generate(tmp_path / 'space', profile='space', shards=range(0, 1), **common)
    with pytest.raises(dataset_cli.CliError, match="profile: existing 'space' vs requested None"):
        dataset_cli.generate(tmp_path / 'space', **common)
    dataset_cli.generate(tmp_path / 'default', shards=range(1, 2), **common)
    with pytest.raises(dataset_cli.CliError, match='parameters differ .*profile'):
        dataset_cli.merge(tmp_path / 'merged', [tmp_path / 'space', tmp_path / 'default'])
    # an unfinished part exports no episodes by position: they are not its episode numbers
    bag = subprocess.run([*CLI, 'export-bag', str(tmp_path / 'default'), '--episodes', '0',
                          '--out', str(tmp_path / 'bag')], capture_output=True, text=True,
                         timeout=60)
    assert bag.returncode == 2 and 'is incomplete: rerun its generate command' in bag.stderr


def _part(root, shards, seed=3):
    """One machine's part of small_dataset's parameters: shard indices `shards` only."""
    from softmaint_sim import dataset_cli
    return dataset_cli.generate(Path(root), episodes=12, seed=seed, workers=1,
                                field_fraction=0.5, shard_size=5, progress=False,
                                shards=shards)


def test_shard_ranges_generated_apart_merge_into_the_single_run_dataset(small_dataset,
                                                                        tmp_path):
    from softmaint_core import dataset as ds
    from softmaint_sim.dataset_cli import load
    # two machines, two places: shard 0 on one, shards 1 and 2 on the other
    first = _part(tmp_path / 'machine-a' / 'part', range(0, 1))
    second = subprocess.run(
        [*CLI, 'generate', '--out', str(tmp_path / 'machine-b' / 'part'), '--episodes', '12',
         '--seed', '3', '--field-fraction', '0.5', '--shard-size', '5', '--workers', '1',
         '--shards', '1:3', '--no-progress'], capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert 'merge the parts' in second.stdout
    assert not first['complete'] and first['shards'] == [ds.shard_name(0)]
    with pytest.raises(ds.DatasetError, match='incomplete'):
        load(tmp_path / 'machine-a' / 'part')
    merged = tmp_path / 'merged'
    run = subprocess.run([*CLI, 'merge', str(merged), str(tmp_path / 'machine-a' / 'part'),
                          str(tmp_path / 'machine-b' / 'part')],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert '12 episodes' in run.stdout
    card = json.loads((merged / 'card.json').read_text())
    single = json.loads((small_dataset / 'card.json').read_text())
    assert card['complete']
    for key in ('parameters', 'physics', 'views', 'arrays', 'classes', 'privileged_columns',
                'shards', 'counts'):
        assert card[key] == single[key], key
    assert [p['shards'] for p in card['merged_from']] == [
        [ds.shard_name(0)], [ds.shard_name(1), ds.shard_name(2)]]
    assert ds.card_digest(merged) == ds.card_digest(small_dataset)
    for index in range(3):     # every array file byte for byte
        mine, theirs = (root / 'shards' / ds.shard_name(index) for root in (merged,
                                                                            small_dataset))
        names = sorted(p.name for p in theirs.iterdir())
        assert sorted(p.name for p in mine.iterdir()) == names
        for name in names:
            assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name
    assert load(merged).array('episode').tolist() == list(range(12))


def test_merge_refuses_parts_of_other_datasets_and_says_what_is_missing(tmp_path):
    def merge(*parts):
        return subprocess.run([*CLI, 'merge', str(tmp_path / 'out'), *map(str, parts)],
                              capture_output=True, text=True, timeout=120)

    _part(tmp_path / 'a', range(0, 1))
    _part(tmp_path / 'other-seed', range(1, 3), seed=4)
    refused = merge(tmp_path / 'a', tmp_path / 'other-seed')
    assert refused.returncode == 2
    assert 'is not a part of the same dataset' in refused.stderr
    assert f"seed: 3 in {tmp_path / 'a'} vs 4 in {tmp_path / 'other-seed'}" in refused.stderr
    assert not (tmp_path / 'out').exists()
    incomplete = merge(tmp_path / 'a')
    assert incomplete.returncode == 2
    assert 'lacks 2 of 3 shards (1:3)' in incomplete.stderr
    assert not json.loads((tmp_path / 'out' / 'card.json').read_text())['complete']
    bad = subprocess.run([*CLI, 'generate', '--out', str(tmp_path / 'c'), '--episodes', '12',
                          '--seed', '3', '--shard-size', '5', '--shards', '2:4'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and 'need 0 <= A < B <= 3' in bad.stderr
    assert not (tmp_path / 'c').exists()
    missing = merge(tmp_path / 'nothing')
    assert missing.returncode == 2 and 'is not a dataset part' in missing.stderr
