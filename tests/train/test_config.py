"""Config files validate into dataclasses; bad fields are named in the error."""
from pathlib import Path

import pytest
from softmaint_train.cli import main
from softmaint_train.config import config_from_dict, ConfigError, load_config, parse_override
from softmaint_train.pipeline import ablation_runs, load_ablation

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
