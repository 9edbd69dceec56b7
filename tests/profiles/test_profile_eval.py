"""The per-profile table: each profile's field episodes through the student bringup runs for it."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def profile_datasets(tmp_path_factory):
    from softmaint_sim import dataset_cli
    roots = []
    for name in ('default', 'space'):
        root = tmp_path_factory.mktemp(name) / 'data'
        dataset_cli.generate(root, episodes=6, seed=11, workers=1, field_fraction=1.0,
                             progress=False, profile=name)
        roots.append(root)
    return roots


def test_table_uses_each_profiles_own_student(profile_datasets, capsys):
    import json

    from softmaint_sim.profile_eval import main
    out = profile_datasets[0].parent / 'metrics.json'
    config = ['--config', str(REPO / 'config')]
    assert main([str(REPO / 'models' / 'student.onnx'), *map(str, profile_datasets),
                 '--own-students', '--json', str(out), *config]) == 0
    rows = json.loads(out.read_text())
    default_id = json.loads((REPO / 'models' / 'student.json').read_text())['model_id']
    space_id = json.loads((REPO / 'models/profiles/space/student.json').read_text())['model_id']
    assert rows['default']['model_id'] == default_id != space_id == rows['space']['model_id']
    for metrics in rows.values():
        assert metrics['episodes'] == 6
        assert 0 <= metrics['damage.macro_f1'] <= 1 and 0 <= metrics['urgency.mae'] <= 1
        assert metrics['decision.windows'] == 6
        low, rate, high = (metrics[f'decision.assistance_rate{s}']
                           for s in ('_ci_low', '', '_ci_high'))
        assert 0 <= low <= rate <= high <= 1
        # windows per true and decided level: every window once; the diagonal is what was right
        confusion = metrics['decision.confusion']
        assert sum(map(sum, confusion)) == 6
        right = sum(confusion[level][level] for level in range(len(confusion)))
        assert right == pytest.approx(6 * metrics['decision.decision_accuracy'])
        assert 0 <= metrics['decision.point_accuracy'] <= 1
        # every window asked about has at least one reason, and a window at most a few
        asked = round(6 * metrics['decision.assistance_rate'])
        counts = metrics['decision.asked_because'].values()
        assert asked <= sum(counts) <= 4 * asked and all(c <= asked for c in counts)
    # space cannot ask (its ground station is 30 min away): it never requests assistance
    assert rows['space']['decision.assistance_rate'] == 0
    assert rows['space']['decision.asked_because'] == {}
    table = capsys.readouterr().out
    assert f'| space | {space_id} | 6 |' in table and f'| default | {default_id} | 6 |' in table
    assert "Decisions under each profile's policy" in table and '- space: never asked' in table
    assert '| true \\ decided | continue_monitoring |' in table
    # without the flag every profile runs the given model
    assert main([str(REPO / 'models' / 'student.onnx'), str(profile_datasets[1]), *config]) == 0
    assert f'| space | {default_id} |' in capsys.readouterr().out


def test_card_carries_each_profiles_figures_for_the_model_that_ran_them(profile_datasets,
                                                                        tmp_path):
    import json
    import shutil

    from softmaint_core.signing import load_public_key, verify_model
    from softmaint_sim.profile_eval import CARD_FIGURES, main
    models = tmp_path / 'models'
    shutil.copytree(REPO / 'models', models, ignore=shutil.ignore_patterns('*.pt'))
    default, space = models / 'student.onnx', models / 'profiles/space/student.onnx'
    before = default.with_suffix('.json').read_text()
    run = [str(default), *map(str, profile_datasets), '--own-students', '--card',
           '--config', str(REPO / 'config')]
    with pytest.raises(SystemExit):             # signed cards are not changed without the key
        main(run)
    assert default.with_suffix('.json').read_text() == before
    assert main([*run, '--signing-key', str(REPO / 'config/keys/softmaint_dev.key.pem')]) == 0
    public = load_public_key(REPO / 'config/keys/softmaint_dev.pub.pem')
    for model, mine, other in ((default, 'default', 'space'), (space, 'space', 'default')):
        verify_model(model, public)             # signed again, with its new card
        metrics = json.loads(model.with_suffix('.json').read_text())['metrics']
        assert metrics[f'profile.{mine}.episodes'] == 6
        assert len([k for k in metrics if k.startswith(f'profile.{mine}.')]) == len(CARD_FIGURES)
        assert 0 <= metrics[f'profile.{mine}.decision_accuracy'] <= 1
        assert not any(k.startswith(f'profile.{other}.') for k in metrics)
    # the card's other figures are kept
    kept = {k: v for k, v in json.loads(before)['metrics'].items() if not k.startswith('profile.')}
    assert kept.items() <= json.loads(default.with_suffix('.json').read_text())['metrics'].items()


def test_urgency_band_coverage_is_the_share_of_true_urgencies_inside_the_band(profile_datasets):
    from dataclasses import replace

    import numpy as np
    from softmaint_core.dataset import Dataset
    from softmaint_core.student import StudentModel
    from softmaint_sim.profile_eval import evaluate, predict, profile_policy
    model = REPO / 'models' / 'student.onnx'
    root = profile_datasets[0]
    thresholds, actions = profile_policy(REPO / 'config', 'default')
    data = Dataset(root)
    index = np.flatnonzero(data.array('domain') == 1)
    predictions, _ = predict(StudentModel(model), data, index)
    error = np.abs(np.asarray(data.array('urgency')[index]) - [p.urgency for p in predictions])
    stds = np.array([p.urgency_std for p in predictions])
    shares = []
    for band in (0.0, 0.5, 2.0, 5.0):
        policy = (replace(thresholds, urgency_band=band), actions)
        share = evaluate(model, root, policy)['decision.urgency_band_coverage']
        assert share == pytest.approx(np.mean(error <= band * stds))
        shares.append(share)
    assert shares == sorted(shares) and shares[0] < shares[-1]
