"""Config files validate into dataclasses; bad fields are named in the error."""
from pathlib import Path

import pytest
from softmaint_train.cli import main
from softmaint_train.config import config_from_dict, ConfigError, load_config, parse_override
from softmaint_train.pipeline import ablation_runs, load_ablation, plan_ablation

REPO = Path(__file__).resolve().parents[2]


def test_committed_configs_validate():
    cfg = load_config(REPO / 'config/train/default.yaml')
    assert cfg.student.members >= 3 and cfg.calibration.conformal_alpha == 0.1
    runs = {}
    for name in ('protocol', 'ablation'):
        abl, base = load_ablation(REPO / f'config/train/{name}.yaml')
        runs[name] = list(ablation_runs(abl, base))
        assert len(runs[name]) == len(abl.seeds) * (
            len(abl.label_fractions) * len(abl.variants) + len(abl.ablations))
        assert abl.teacher_seed == 0
    assert {c.distill.use_teacher for _, c in runs['protocol']} == {True, False}
    # ablations differ from the protocol's distilled 1 % run in one switch and nothing else
    reference = {tag: c for tag, c in runs['protocol']}['distilled-f0.01-seed0']
    for tag, cfg in runs['ablation']:
        assert cfg.data.label_fraction == 0.01
        assert cfg.student.epochs == reference.student.epochs
        assert cfg.teacher == reference.teacher


@pytest.mark.parametrize('data, message', [
    ({'distill': {'temperatur': 2}}, "distill.temperatur: unknown field (did you mean 'temperature'"),
    ({'distill': {'alpha_start': 1.5}}, 'distill.alpha_start: must be in [0, 1]'),
    ({'student': {'members': 'three'}}, 'student.members: expected an integer'),
    ({'student': {'model': {'d_model': 30, 'heads': 4}}}, 'student.model.d_model'),
    ({'distill': {'feature': 'l2'}}, 'distill.feature: must be one of'),
    ({'data': {'label_fraction': 0.0}}, 'data.label_fraction'),
    ({'teacher': 3}, 'teacher: expected a mapping'),
    ({'distill': {'mix': {'enabled': 'yes'}}}, 'distill.mix.enabled: expected true/false'),
    # numbers that would fail deep inside training, or train on nothing
    ({'student': {'weight_decay': float('nan')}}, 'student.weight_decay: must be a finite'),
    ({'distill': {'sigmoid_steepness': float('inf')}}, 'distill.sigmoid_steepness: must be a'),
    ({'teacher': {'privileged_weight': -5}}, 'teacher.privileged_weight: must be a finite'),
    ({'data': {'max_windows': -10}}, 'data.max_windows: must be a finite number >= 0'),
    ({'student': {'model': {'cnn_channels': []}}}, 'student.model.cnn_channels: must be a list'),
    ({'data': {'teacher_val': 1.0}}, 'data.teacher_val: must leave teacher training episodes'),
    ({'export': {'opset': 3}}, 'export.opset: the exporter writes opsets 7-20'),
])
def test_bad_fields_are_named(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert message in str(err.value)


def test_overrides_and_cli_exit_code(tmp_path, capsys):
    assert parse_override('distill.alpha_end=0.9') == ('distill.alpha_end', 0.9)
    cfg = load_config(REPO / 'config/train/default.yaml', {'seed': 3})
    assert cfg.seed == 3
    bad = tmp_path / 'bad.yaml'
    bad.write_text('student:\n  epochz: 3\n')
    assert main(['reproduce', '--config', str(bad)]) == 2
    assert 'student.epochz: unknown field' in capsys.readouterr().err
    # an unusable signing key stops the run before any training
    assert main(['reproduce', '--config', str(REPO / 'config/train/default.yaml'),
                 '--signing-key', str(tmp_path / 'absent.key.pem')]) == 2
    assert 'cannot read the private key' in capsys.readouterr().err


def test_overrides_read_numbers_and_refuse_what_is_not_a_field(tmp_path):
    default = REPO / 'config/train/default.yaml'
    # YAML 1.1 reads 1e-3 as a string; a number field takes it as the number it is
    assert load_config(default, dict([parse_override('student.lr=1e-3')])).student.lr == 0.001
    with pytest.raises(ConfigError, match='seed.x: seed is a value, not a group of fields'):
        load_config(default, dict([parse_override('seed.x=1')]))
    with pytest.raises(ConfigError, match="override 'data.root=\\[oops': the value is not valid"):
        parse_override('data.root=[oops')
    (tmp_path / 'base.yaml').write_text('base: 3\n')
    with pytest.raises(ConfigError, match='base: expected the path of a config file, got 3'):
        load_config(tmp_path / 'base.yaml')


@pytest.mark.parametrize('text, message', [
    (None, 'ablation config .* not found'),
    ('seeds: 0\n', 'seeds: expected a list, got 0'),
    ('variants: [a]\n', 'variants: expected a dict'),
    ('[1, 2]\n', 'top level must be a mapping'),
])
def test_bad_ablation_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / 'ablation.yaml'
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        plan_ablation(path)


def test_variants_sharing_a_teacher_must_not_change_it(tmp_path):
    path = tmp_path / 'ablation.yaml'
    head = f'base: {REPO}/config/train/default.yaml\nseeds: [0, 1]\nlabel_fractions: [0.01]\n'
    # what only the student sees may vary; one teacher per seed serves them all
    path.write_text(head + 'variants: {a: {}, b: {distill.use_teacher: false, '
                    'data.calibration_root: other}}\n')
    assert len(plan_ablation(path)[1]) == 4
    path.write_text(head + 'variants: {a: {}, b: {teacher.epochs: 20}}\n')
    with pytest.raises(ConfigError, match='run b-f0.01-seed0 changes teacher.epochs but shares '
                                          'the teacher of seed 0 with a-f0.01-seed0'):
        plan_ablation(path)
    # with one teacher for every seed (teacher_seed), another seed's data counts too
    path.write_text(head + 'teacher_seed: 0\nvariants: {a: {}}\n'
                    'ablations: {b: {data.split_seed: 3}}\n')
    with pytest.raises(ConfigError, match='changes data.split_seed'):
        plan_ablation(path)


def _differs(a, b):
    from dataclasses import asdict
    a, b = (asdict(load_config(REPO / 'config/train' / name)) for name in (a, b))
    return ({f'{k}.{f}' for k in a if isinstance(a[k], dict) for f in a[k] if a[k][f] != b[k][f]}
            | {k for k in a if not isinstance(a[k], dict) and a[k] != b[k]})


def test_a_config_states_only_what_differs_from_its_base(tmp_path):
    assert _differs('shipped.yaml', 'shipped-log-rul.yaml') == {
        'teacher.privileged_target', 'teacher.urgency_loss', 'student.urgency_loss'}
    assert _differs('shipped-log-rul.yaml', 'field-v2.yaml') == {
        'name', 'data.root', 'teacher.epochs', 'student.epochs', 'export.model_id'}
    assert _differs('field-v25.yaml', 'space.yaml') == {
        'name', 'data.root', 'data.calibration_root', 'export.out', 'export.model_id'}
    assert _differs('field-v21u.yaml', 'field-v22.yaml') == {
        'name', 'data.normalisation', 'calibration.conformal_sets', 'export.model_id'}
    assert _differs('field-v22.yaml', 'field-v23.yaml') == {
        'name', 'student.model', 'student.epochs', 'calibration.damage_miss_alpha',
        'calibration.camera_snr_alpha', 'export.model_id'}
    assert _differs('field-v23.yaml', 'field-v24.yaml') == {
        'name', 'teacher.model', 'student.model', 'distill.urgency_kd', 'export.model_id'}
    assert _differs('field-v24.yaml', 'field-v25.yaml') == {
        'name', 'data.calibration_root', 'export.model_id'}
    (tmp_path / 'a.yaml').write_text('base: b.yaml\nseed: 1\n')
    (tmp_path / 'b.yaml').write_text('base: a.yaml\n')
    with pytest.raises(ConfigError, match='cycle'):
        load_config(tmp_path / 'a.yaml')
    (tmp_path / 'c.yaml').write_text('base: missing.yaml\n')
    with pytest.raises(ConfigError, match='missing.yaml not found'):
        load_config(tmp_path / 'c.yaml')


def test_the_protocol_runs_on_another_recipe():
    # softmaint-train ablate --config config/train/protocol.yaml \
    #     --base config/train/shipped-log-rul.yaml
    abl, base = load_ablation(REPO / 'config/train/protocol.yaml',
                              base=REPO / 'config/train/shipped-log-rul.yaml')
    runs = dict(ablation_runs(abl, base))
    shipped = load_config(REPO / 'config/train/shipped-log-rul.yaml')
    run = runs['distilled-f0.01-seed1']
    assert run.student.model == shipped.student.model and run.teacher == shipped.teacher
    assert (run.seed, run.data.label_fraction, run.student.epochs) == (1, 0.01, 4)
    assert not runs['scratch-f1-seed2'].distill.use_teacher
