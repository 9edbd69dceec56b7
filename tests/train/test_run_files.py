"""What the offline tool leaves on disk when an export, a save or a resumed ablation goes wrong."""
import json
import shutil

from conftest import REPO, tiny_config
import pytest
from softmaint_core.dataset import Dataset, DatasetError
from softmaint_core.metadata import load_verified
from softmaint_core.signing import load_private_key, signature_path
from softmaint_train import checkpoints, pipeline
from softmaint_train.checkpoints import build_student, save_checkpoint
from softmaint_train.cli import main
from softmaint_train.data import DataError
from softmaint_train.export import ParityError
import torch

CALIB = {'temperature_fatigue': 1.3, 'temperature_damage': 0.9, 'conformal_alpha': 0.1,
         'conformal_fatigue': 0.7, 'conformal_damage': 0.8}
STATS = {'camera': ([0.4, 0.5, 0.6], [0.2, 0.2, 0.2]), 'tactile': ([0.0] * 8, [1.0] * 8),
         'proprio': ([1.0] * 8, [0.3] * 8), 'environment': ([20, 50, 400, 1013], [3, 10, 50, 5])}
EXPORTED = ('student.onnx', 'student.json', 'student.pt')


@pytest.fixture
def trained(synthetic_root, tmp_path):
    """A student, its checkpoint and a config that exports into tmp_path/models."""
    torch.manual_seed(0)
    cfg = tiny_config(synthetic_root, tmp_path)
    student = build_student(cfg).eval()
    checkpoint = tmp_path / 'runs/student-x.pt'
    save_checkpoint(checkpoint, 'student', student, cfg, stats=STATS, calibration=CALIB)
    return cfg, student, checkpoint


def _export(trained, key=None):
    cfg, student, checkpoint = trained
    return pipeline.export_student(cfg, student, STATS, CALIB, {}, checkpoint, key)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_failed_export_leaves_the_deployed_model_as_it_was(trained, monkeypatch,
                                                             signing_keys):
    checkpoint = trained[2]
    models = checkpoint.parents[1] / 'models'
    _export(trained, load_private_key(signing_keys.private))
    before = _files(models)
    assert set(before) == set(EXPORTED) | {'student.onnx.sig'}

    def disagree(*_):
        raise ParityError('onnxruntime and torch differ by 0.5')
    monkeypatch.setattr(pipeline, 'check_parity', disagree)
    with pytest.raises(pipeline.ExportError, match=f'differ by 0.5; {models}/student.onnx is '
                                                   'unchanged.*export --checkpoint'):
        _export(trained)
    assert _files(models) == before     # nothing staged is left beside it either


def test_an_export_replaces_every_file_and_an_unsigned_one_drops_the_old_signature(
        trained, signing_keys):
    cfg, _, checkpoint = trained
    models = checkpoint.parents[1] / 'models'
    _export(trained, load_private_key(signing_keys.private))
    signed = _files(models)
    cfg.export.model_id = 'student-next'
    assert _export(trained)['signed_by'] is None
    assert sorted(p.name for p in models.iterdir()) == sorted(EXPORTED)
    assert not signature_path(models / 'student.onnx').exists()
    assert load_verified(models / 'student.onnx').model_id == 'student-next'
    assert _files(models)['student.json'] != signed['student.json']
    # a re-export from the deployed checkpoint itself (softmaint-train export --checkpoint
    # models/student.pt) copies it onto itself
    shutil.copyfile(checkpoint, models / 'student.pt')
    pipeline.export_student(cfg, trained[1], STATS, CALIB, {}, models / 'student.pt')
    assert (models / 'student.pt').read_bytes() == checkpoint.read_bytes()


def test_a_save_cut_off_leaves_the_previous_checkpoint(trained, monkeypatch):
    cfg, student, checkpoint = trained
    before = checkpoint.read_bytes()

    def cut_off(obj, path):
        path.write_bytes(b'PK\x03\x04 half a zip')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(checkpoints.torch, 'save', cut_off)
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint(checkpoint, 'student', student, cfg)
    assert checkpoint.read_bytes() == before


def _ablation(tmp_path, root):
    path = tmp_path / 'ablation.yaml'
    path.write_text(f'base: {REPO}/config/train/default.yaml\nseeds: [0]\n'
                    f'label_fractions: [0.5]\nteacher_seed: 0\n'
                    f'overrides: {{data.root: {root}, runs_dir: {tmp_path}/runs}}\n'
                    'variants: {distilled: {}}\n')
    return path


def _record(dataset, config=None):
    return json.dumps({'variant': 'distilled', 'label_fraction': 0.5, 'seed': 0,
                       'dataset_card_sha256': dataset, **({'config_sha256': config}
                                                          if config else {})})


def test_a_resumed_ablation_refuses_a_broken_record_or_another_dataset_or_config(
        synthetic_root, tmp_path):
    from softmaint_core.dataset import card_digest
    path, out = _ablation(tmp_path, synthetic_root), tmp_path / 'out'
    out.mkdir()
    results = out / 'results.jsonl'
    dataset = card_digest(synthetic_root)
    config = checkpoints.config_digest(pipeline.plan_ablation(path)[1][0][1])
    # the run recorded with this dataset and config (or before configs were recorded; blank
    # lines are no records): nothing to train
    for record in (_record(dataset, config), _record(dataset)):
        results.write_text(record + '\n\n')
        assert pipeline.ablate(path, out, progress=False) == results
    for record, changed in ((_record('0' * 64), 'dataset'), (_record(dataset, 'f' * 64), 'config'),
                            (_record('0' * 64, 'f' * 64), 'dataset and config')):
        results.write_text(record + '\n')
        with pytest.raises(DataError, match=f'run distilled-f0.5-seed0 was recorded with another '
                                            f'{changed} than this one'):
            pipeline.ablate(path, out, progress=False)
    results.write_text(_record(dataset) + '\n{"variant": "dist')
    with pytest.raises(DataError, match='line 2: not a complete record.*delete that line'):
        pipeline.ablate(path, out, progress=False)


def test_a_missing_or_broken_dataset_is_a_data_error(synthetic_root, tmp_path, capsys):
    config = str(REPO / 'config/train/default.yaml')
    assert main(['teacher', '--config', config, '--set', f'data.root={tmp_path}/none']) == 2
    assert 'card.json not found: generate the dataset first' in capsys.readouterr().err
    broken = tmp_path / 'broken'
    shutil.copytree(synthetic_root, broken)
    (broken / 'card.json').write_text('{"generator": ')
    with pytest.raises(DatasetError, match='card.json is not valid JSON'):
        Dataset(broken)
    shutil.copyfile(synthetic_root / 'card.json', broken / 'card.json')
    for shard in (broken / 'shards').iterdir():
        (shard / 'episode.npy').unlink()
    with pytest.raises(DatasetError, match="array 'episode' missing"):
        Dataset(broken)


def test_reproduce_checks_what_its_summary_reads_before_training(synthetic_root, tmp_path,
                                                                 capsys):
    config = str(REPO / 'config/train/default.yaml')
    common = ['reproduce', '--config', config, '--set', f'data.root={synthetic_root}',
              '--set', f'runs_dir={tmp_path}/runs', '--summary', str(tmp_path / 's.json')]
    protocol = str(_ablation(tmp_path, synthetic_root))
    assert main(common + ['--protocol', str(tmp_path / 'typo.yaml'),
                          '--test-data', str(synthetic_root)]) == 2
    assert 'typo.yaml not found' in capsys.readouterr().err
    assert main(common + ['--protocol', protocol, '--test-data', str(tmp_path / 'nope')]) == 2
    assert 'nope/card.json not found' in capsys.readouterr().err
    assert not (tmp_path / 'runs').exists()     # nothing trained, nothing written
