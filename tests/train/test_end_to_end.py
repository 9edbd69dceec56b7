"""Tiny end-to-end runs on synthetic data (NOT the simulator): learning, export, ablation."""
import json
from pathlib import Path

from conftest import tiny_config
from synthetic import make_dataset
import numpy as np
import pytest
from softmaint_core.dataset import card_digest
from softmaint_core.image import frame_snr
from softmaint_core.metadata import load_verified
from softmaint_core.postprocess import postprocess
from softmaint_core.spec import OUTPUTS
from softmaint_train.data import fit_normalisation, make_splits, open_dataset, Windows
from softmaint_train.evaluate import labels_of, student_outputs
from softmaint_train.export import example_inputs, session
from softmaint_core.metrics import macro_f1
from softmaint_train.pipeline import get_teacher, run, teacher_cache, teacher_fingerprint
from softmaint_train.checkpoints import build_teacher
from softmaint_train.train import teacher_outputs, TrainingError, train_student
import torch


@pytest.mark.slow
def test_student_learns_above_chance(synthetic_root, tmp_path):
    torch.set_num_threads(2)
    cfg = tiny_config(synthetic_root, tmp_path, **{'distill.use_teacher': False,
                                                    'student.min_labelled_steps': 150})
    ds = open_dataset(synthetic_root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    train = Windows.load(ds, 'field', np.sort(np.concatenate([splits.teacher_train,
                                                              splits.field_train])))
    stats = fit_normalisation(train)
    student = train_student(cfg, train, np.arange(len(train)), stats, progress=False)
    test = Windows.load(ds, 'field', np.sort(np.concatenate([splits.field_test,
                                                             splits.teacher_val])))
    out = student_outputs(student, test, stats)
    labels = labels_of(test)
    f1 = macro_f1(labels['damage'], out['damage'].mean(1).argmax(-1), 5)
    assert f1 > 0.5, f'damage macro-F1 {f1:.3f} is not above chance (0.2)'
    mae = np.abs(out['urgency'].mean(1) - labels['urgency']).mean()
    assert mae < np.abs(labels['urgency'] - labels['urgency'].mean()).mean()


@pytest.mark.slow
def test_reproduce_pipeline_exports_a_verified_model(synthetic_root, tmp_path, signing_keys):
    from softmaint_core.signing import load_private_key, load_public_key, verify_model
    torch.set_num_threads(2)
    calibration_root = make_dataset(tmp_path / 'calibration', episodes=20, seed=7)
    cfg = tiny_config(synthetic_root, tmp_path, **{'data.label_fraction': 0.2,
                                                    'calibration.damage_miss_alpha': 0.3,
                                                    'data.calibration_root': str(calibration_root)})
    record = run(cfg, tmp_path / 'runs', export=True, progress=False,
                 signing_key=load_private_key(signing_keys.private))
    # field_cal and the separately generated data's 10 field episodes of 4 windows
    assert record['calibration']['windows'] == record['splits']['field_cal'] + 40
    assert record['calibration_card_sha256']
    assert record['export']['parity_max_abs_diff'] < 1e-4
    assert record['export']['signed_by'] == verify_model(cfg.export.out,
                                                         load_public_key(signing_keys.public))
    assert 0 < record['labelled_windows'] < record['splits']['field_train']
    assert {'all', 'no_camera', 'camera_only', 'lighting_shift'} <= set(record['student'])
    path = Path(cfg.export.out)
    meta = load_verified(path)
    assert meta.members == cfg.student.members
    assert meta.training_config['data']['label_fraction'] == 0.2
    assert 'test.damage.macro_f1' in meta.metrics
    assert meta.metrics['calibration_windows'] == record['calibration']['windows']
    assert meta.calibration_card_sha256 == card_digest(calibration_root)
    assert meta.damage_miss_alpha == 0.3            # the miss-rate threshold reaches the card
    assert meta.damage_miss_threshold == pytest.approx(
        record['calibration']['damage_miss_threshold'])
    assert path.with_suffix('.pt').is_file()
    feeds = example_inputs(1, masks=[[1, 1, 1, 1]])
    pred = postprocess(dict(zip(OUTPUTS, session(path).run(None, feeds))), [True] * 4, meta)
    assert 1 <= len(pred.damage_set) <= 5 and 0 <= pred.uncertainty <= 1
    json.dumps(record)  # the record is JSON-ready


def test_per_domain_normalisation_exports_the_field_statistics(synthetic_root, tmp_path):
    # the robot is the field domain: its model normalises with the field windows' statistics
    # (unlabelled field-train and pool windows), conformal sets are per class, and its camera
    # floor is the 20 % conformal bound of the field train + calibration windows' SNR
    cfg = tiny_config(synthetic_root, tmp_path, **{
        'data.normalisation': 'per_domain', 'calibration.conformal_sets': 'class_conditional',
        'calibration.camera_snr_alpha': 0.2,
        'teacher.epochs': 1, 'student.epochs': 1, 'student.min_labelled_steps': 2})
    record = run(cfg, tmp_path / 'runs', export=True, progress=False)
    ds = open_dataset(synthetic_root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    pool = np.sort(np.concatenate([splits.teacher_train, splits.field_train]))
    field_rows = pool[np.asarray(ds.array('domain')[pool]) == 1]
    want = fit_normalisation(Windows.load(ds, 'field', field_rows))
    meta = load_verified(Path(cfg.export.out))
    for modality in meta.input_spec.modalities:
        np.testing.assert_allclose(modality.mean, want[modality.name][0], rtol=1e-6)
        np.testing.assert_allclose(modality.std, want[modality.name][1], rtol=1e-6)
    assert len(meta.conformal_damage) == 5 and len(meta.conformal_fatigue) == 3
    assert record['calibration']['conformal_sets'] == 'class_conditional'
    rows = np.concatenate([splits.field_train, splits.field_cal])
    seen = ds.take('field_mask', rows)[:, 0].astype(bool)
    snr = np.sort(frame_snr(ds.take('field_camera', rows)[seen]))
    floor = snr[int(0.2 * (len(snr) + 1)) - 1]
    assert meta.input_spec.modality('camera').min_snr == pytest.approx(floor)
    assert 0 < floor < snr[-1]


def test_non_finite_loss_stops_with_a_clear_error(synthetic_root, tmp_path):
    cfg = tiny_config(synthetic_root, tmp_path, **{'distill.use_teacher': False,
                                                    'student.min_labelled_steps': 2,
                                                    'student.epochs': 1})
    ds = open_dataset(synthetic_root)
    train = Windows.load(ds, 'field', np.arange(32))
    stats = fit_normalisation(train)
    train.arrays['urgency'] = np.full_like(train.arrays['urgency'], np.nan)
    with pytest.raises(TrainingError, match='non-finite loss at step 0'):
        train_student(cfg, train, np.arange(len(train)), stats, progress=False)


def test_teacher_output_cache_belongs_to_one_teacher(synthetic_root, tmp_path):
    # a retrained teacher (new config, same rows) must not be served the old one's outputs
    cfg = tiny_config(synthetic_root, tmp_path)
    ds = open_dataset(synthetic_root)
    rows = np.arange(12)
    windows = Windows.load(ds, 'teacher', rows)
    stats = fit_normalisation(windows)
    path = tmp_path / 'teacher-seed0-pool.npz'
    for seed in (0, 1):
        torch.manual_seed(seed)
        teacher = build_teacher(cfg, 3).eval()
        got = teacher_cache(teacher, ds, rows, stats, path)
        want = teacher_outputs(teacher, windows, stats)
        np.testing.assert_allclose(got['damage'], want['damage'], rtol=1e-5, atol=1e-6)
    again = teacher_cache(teacher, ds, rows, stats, path)       # same teacher: from the file
    np.testing.assert_array_equal(again['damage'], got['damage'])
    # a cache written before the teacher's log RUL was distilled lacks it: recomputed, not used
    older = {k: v for k, v in np.load(path).items() if k != 'log_rul'}
    np.savez(path, **older)
    np.testing.assert_allclose(teacher_cache(teacher, ds, rows, stats, path)['log_rul'],
                               want['log_rul'], rtol=1e-5, atol=1e-6)


def test_teacher_reads_each_domain_with_its_own_statistics(synthetic_root, tmp_path):
    from softmaint_train.data import DomainStats
    cfg = tiny_config(synthetic_root, tmp_path)
    ds = open_dataset(synthetic_root)
    rows = np.arange(40)
    domain = np.asarray(ds.array('domain')[rows])
    assert 0 < domain.sum() < len(rows)                  # both domains among the rows
    windows = Windows.load(ds, 'teacher', rows)
    sim = fit_normalisation(windows)
    field = {k: ([m + 0.5 for m in mean], [2.0 * s for s in std])
             for k, (mean, std) in sim.items()}
    torch.manual_seed(0)
    teacher = build_teacher(cfg, 3).eval()
    path = tmp_path / 'teacher-seed0-pool.npz'
    teacher_cache(teacher, ds, rows, sim, path)          # cached with one statistics ...
    got = teacher_cache(teacher, ds, rows, DomainStats(sim, field), path)   # ... not reused
    for d, stats in ((0, sim), (1, field)):
        which = np.flatnonzero(domain == d)
        want = teacher_outputs(teacher, Windows.load(ds, 'teacher', rows[which]), stats)
        np.testing.assert_allclose(got['damage'][which], want['damage'], rtol=1e-5, atol=1e-6)
    assert not np.allclose(got['damage'][domain == 1],
                           teacher_outputs(teacher, windows, sim)['damage'][domain == 1])


def test_a_teacher_of_another_dataset_is_retrained_not_reused(synthetic_root, tmp_path):
    # regenerated data (another generator, another profile) keeps the split sizes of the
    # same seed; the teacher of the old data must not be served for the new
    from synthetic import make_dataset
    other = make_dataset(tmp_path / 'other', episodes=60, windows=4, seed=5)
    first = tiny_config(synthetic_root, tmp_path, **{'teacher.epochs': 1})
    second = tiny_config(other, tmp_path, **{'teacher.epochs': 1})
    trained = {}
    for cfg in (first, first, second):
        ds = open_dataset(cfg.data.root)
        splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
        teacher, _ = get_teacher(cfg, ds, splits, tmp_path, progress=False)
        trained.setdefault(cfg.data.root, []).append(teacher_fingerprint(teacher, {}))
    assert trained[first.data.root][0] == trained[first.data.root][1]     # reused
    assert trained[second.data.root][0] != trained[first.data.root][0]    # retrained


@pytest.mark.slow
def test_teacher_checkpoint_of_an_older_architecture_is_retrained(synthetic_root, tmp_path):
    # an older release wrote configs without model.cnn_pool (its CNN averaged the frames):
    # rebuilt with today's default its weights do not fit, so it must be retrained, not loaded
    cfg = tiny_config(synthetic_root, tmp_path, **{'teacher.epochs': 1,
                                                    'teacher.model.cnn_pool': 'mean'})
    ds = open_dataset(synthetic_root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    get_teacher(cfg, ds, splits, tmp_path, progress=False)
    path = tmp_path / 'teacher-seed0.pt'
    saved = torch.load(path, weights_only=False)
    del saved['config']['teacher']['model']['cnn_pool']
    torch.save(saved, path)
    cfg = tiny_config(synthetic_root, tmp_path, **{'teacher.epochs': 1})
    teacher, _ = get_teacher(cfg, ds, splits, tmp_path, progress=False)
    assert teacher.encoder.encoders['camera'].pool == 'flatten'
    assert torch.load(path, weights_only=False)['config']['teacher']['model']['cnn_pool'] == (
        'flatten')


@pytest.mark.slow
def test_teacher_checkpoint_without_a_later_switch_at_its_default_is_reused(synthetic_root,
                                                                           tmp_path):
    # model.vector_encoder came after this checkpoint; its default is what the checkpoint
    # was trained as, so the teacher is the same architecture and must be reused as it is
    cfg = tiny_config(synthetic_root, tmp_path, **{'teacher.epochs': 1})
    ds = open_dataset(synthetic_root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    first, _ = get_teacher(cfg, ds, splits, tmp_path, progress=False)
    path = tmp_path / 'teacher-seed0.pt'
    saved = torch.load(path, weights_only=False)
    del saved['config']['teacher']['model']['vector_encoder']
    torch.save(saved, path)
    again, _ = get_teacher(cfg, ds, splits, tmp_path, progress=False)
    assert teacher_fingerprint(again, {}) == teacher_fingerprint(first, {})
    assert 'vector_encoder' not in torch.load(path, weights_only=False)['config']['teacher'][
        'model']        # not rewritten: reused


@pytest.mark.slow
def test_ablate_cli_runs_every_variant_and_reports_beside_the_runs(synthetic_root, tmp_path,
                                                                   monkeypatch):
    from dataclasses import asdict
    from softmaint_train.cli import main
    import yaml
    cfg = tiny_config(synthetic_root, tmp_path, **{'threads': 1})
    (tmp_path / 'tiny.yaml').write_text(yaml.safe_dump(json.loads(json.dumps(asdict(cfg)))))
    (tmp_path / 'ablation.yaml').write_text(
        'base: tiny.yaml\nseeds: [0]\nlabel_fractions: [0.2]\nteacher_seed: 0\n'
        "variants: {distilled: {}, scratch: {distill.use_teacher: false}}\nablations: {}\n")
    monkeypatch.chdir(tmp_path)                  # a stray default report would land here
    assert main(['ablate', '--config', 'ablation.yaml', '--out', 'runs/abl',
                 '--no-progress']) == 0
    rows = [json.loads(line) for line in (tmp_path / 'runs/abl/results.jsonl').open()]
    assert sorted(r['variant'] for r in rows) == ['distilled', 'scratch']
    assert (tmp_path / 'runs/abl/report/report.md').is_file()
    assert not (tmp_path / 'docs').exists()


@pytest.mark.slow
def test_reproduce_writes_the_shipped_summary(synthetic_root, tmp_path, monkeypatch):
    from dataclasses import asdict
    import shutil
    from softmaint_train.cli import main
    from softmaint_train.shipped_summary import TARGETS
    import yaml
    repo = Path(__file__).resolve().parents[2]
    cfg = tiny_config(synthetic_root, tmp_path, **{'threads': 1})
    (tmp_path / 'tiny.yaml').write_text(yaml.safe_dump(json.loads(json.dumps(asdict(cfg)))))
    (tmp_path / 'protocol.yaml').write_text(
        'base: tiny.yaml\nseeds: [0, 1]\nlabel_fractions: [0.01]\nteacher_seed: 0\n'
        "variants: {distilled: {}, scratch: {distill.use_teacher: false}}\n")
    shutil.copytree(repo / 'config', tmp_path / 'config')      # the default policy
    monkeypatch.chdir(tmp_path)
    assert main(['reproduce', '--config', 'tiny.yaml', '--no-progress',
                 '--protocol', 'protocol.yaml', '--test-data', str(synthetic_root),
                 '--summary', 'shipped/summary.json']) == 0
    summary = json.loads((tmp_path / 'shipped/summary.json').read_text())
    records = [json.loads(line) for line in
               (tmp_path / 'runs/protocol/results.jsonl').open()]
    distilled = {r['seed']: r for r in records if r['variant'] == 'distilled'}
    f1 = summary['student_damage_f1']
    assert set(f1['per_seed']) == {'0', '1'}
    assert f1['per_seed']['1'] == distilled[1]['student']['all']['damage.macro_f1']
    ratio = distilled[0]['student']['all']['damage.macro_f1'] / \
        distilled[0]['teacher']['damage.macro_f1']
    assert summary['student_to_teacher']['per_seed']['0'] == pytest.approx(ratio)
    assert summary['commands'][0] == (
        'softmaint-train reproduce --config tiny.yaml --protocol protocol.yaml '
        f'--test-data {synthetic_root} --summary shipped/summary.json')
    assert summary['test_windows'] > 0 and summary['nominal_coverage'] == pytest.approx(0.9)
    assert 0 <= summary['assistance_rate'] <= 1 and summary['reproduce_seconds'] > 0
    # the tiny teacher trains in about a second: counted as reused, the budget is not judged
    assert summary['teacher_reused'] and set(summary['meets']) == set(TARGETS) - {
        'reproduce_seconds'}
    card = load_verified(cfg.export.out).metrics       # the model card carries the figures
    assert card['card.student_to_teacher.mean'] == summary['student_to_teacher']['mean']
    assert card['card.assistance_rate'] == summary['assistance_rate']
    # refused before anything trains
    assert main(['reproduce', '--config', 'tiny.yaml', '--summary', 'x.json']) == 2
    assert main(['reproduce', '--config', 'tiny.yaml', '--protocol', 'protocol.yaml',
                 '--test-data', str(synthetic_root), '--summary', 'x.json',
                 '--set', f'data.calibration_root={synthetic_root}']) == 2
    assert not Path('x.json').exists()


def test_calibration_data_is_refused_before_anything_trains(synthetic_root, tmp_path):
    from softmaint_train.data import DataError
    cfg = tiny_config(synthetic_root, tmp_path, **{'data.calibration_root': str(synthetic_root)})
    with pytest.raises(DataError, match='seed of'):
        run(cfg, tmp_path / 'runs', progress=False)
    assert not list((tmp_path / 'runs').glob('*.pt'))         # no teacher was trained


def test_calibration_reads_a_camera_below_the_floor_as_missing(synthetic_root):
    # as the robot does (softmaint_core.window.unreadable): only the camera column changes
    from softmaint_train.pipeline import readable
    from softmaint_core.spec import MODALITIES
    windows = Windows.load(open_dataset(synthetic_root), 'field', np.arange(12))
    snr = frame_snr(windows.arrays['camera'])
    floor = float(np.median(snr))
    mask = readable(windows, floor)
    camera = MODALITIES.index('camera')
    np.testing.assert_array_equal(mask[:, camera], snr >= floor)
    assert 0 < mask[:, camera].sum() < len(windows)
    assert np.delete(mask, camera, axis=1).all() and readable(windows, None).all()


def test_student_outputs_take_a_mask_per_window(synthetic_root, tmp_path, monkeypatch):
    # calibration masks unreadable cameras window by window (pipeline.readable), in chunks
    from softmaint_train import evaluate
    from softmaint_train.checkpoints import build_student
    from softmaint_core.spec import MODALITIES
    monkeypatch.setattr(evaluate, 'CHUNK', 16)
    cfg = tiny_config(synthetic_root, tmp_path)
    windows = Windows.load(open_dataset(synthetic_root), 'field', np.arange(40))
    stats = fit_normalisation(windows)
    torch.manual_seed(0)
    student = build_student(cfg)
    no_camera = np.array([n != 'camera' for n in MODALITIES])
    per_window = np.ones((40, len(MODALITIES)), dtype=bool)
    per_window[::3] = no_camera
    got = student_outputs(student, windows, stats, mask=per_window)['damage']
    np.testing.assert_allclose(got[::3], student_outputs(student, windows, stats,
                                                         mask=no_camera)['damage'][::3],
                               rtol=1e-5, atol=1e-6)
    kept = np.ones(40, dtype=bool)
    kept[::3] = False
    np.testing.assert_allclose(got[kept], student_outputs(student, windows, stats)['damage'][kept],
                               rtol=1e-5, atol=1e-6)
