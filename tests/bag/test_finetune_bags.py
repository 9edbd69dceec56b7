"""Fine-tuning from bags with labels from the maintenance log (softmaint-finetune-bags)."""
import json
import math
from pathlib import Path

import pytest

from bag import bags
from train.synthetic import tiny_student

FATIGUE, DAMAGE, URGENCY = 2, 1, 0.9          # what the operator saw on the new arm


def _log(tmp_path, spans):
    """A maintenance log where an operator answered requests over the given bag spans."""
    from softmaint_core.maintenance_log import MaintenanceLog
    path = tmp_path / 'maintenance.db'
    with MaintenanceLog(path) as log:
        for i, (start, end, labels) in enumerate(spans):
            request = f'req-{i}'
            log.append('decision', start, 'request_assistance', 'uncertain',
                       request_id=request, evidence={})
            log.append('decision', start + 1.0, 'request_assistance', 'still uncertain',
                       request_id=request, evidence={})
            log.acknowledge(request, end, 'schedule_maintenance', 'ada: a leaking chamber',
                            {'operator': 'ada', **labels})
    return path


@pytest.mark.slow
def test_finetune_from_bags_improves_held_out_metrics_and_reports_forgetting(tmp_path, capsys):
    from softmaint_train.finetune_bags import main
    checkpoint = tiny_student(tmp_path, seed=0)
    second = 10**9
    train_start, held_start, other_start = (bags.START_NS + k * 100 * second for k in range(3))
    bags.write_sensor_bag(tmp_path / 'train', 'mcap', seconds=10.0, seed=1,
                          start_ns=train_start)
    bags.write_sensor_bag(tmp_path / 'held', 'sqlite3', seconds=6.0, seed=2,
                          start_ns=held_start)
    labels = {'fatigue_label': FATIGUE, 'damage_label': DAMAGE, 'urgency_label': URGENCY}
    log = _log(tmp_path, [
        (train_start / 1e9, train_start / 1e9 + 10.0, labels),
        (held_start / 1e9, held_start / 1e9 + 6.0, labels),
        (other_start / 1e9, other_start / 1e9 + 5.0,        # answered without labels
         {'fatigue_label': -1, 'damage_label': -1, 'urgency_label': None})])
    report_path = tmp_path / 'report.json'
    command = ['--checkpoint', str(checkpoint), '--log', str(log), '--train',
               str(tmp_path / 'train'), '--held-out', str(tmp_path / 'held'), '--steps', '30',
               '--ewc', '10', '--fisher-batches', '3', '--out', str(tmp_path / 'tuned.pt'),
               '--report', str(report_path)]
    # the default gate: a constant-label bag with a weak EWC overwrites the original skills
    assert main(command) == 3
    report = json.loads(report_path.read_text())
    assert not report['accepted'] and not (tmp_path / 'tuned.pt').exists()
    assert any('on the original held-out data fell by' in r for r in report['refusal'])
    assert 'refused, no fine-tuned student written' in capsys.readouterr().err
    assert main(command + ['--max-forgetting', '1.0']) == 0
    report = json.loads(report_path.read_text())
    assert report['accepted'] and report['refusal'] == []
    assert report['labelled_spans'] == 2 and report['unlabelled_acknowledgements'] == 1
    assert report['train_windows'] == 9 and report['held_out_windows'] == 5
    before, after = report['before']['held_out'], report['after']['held_out']
    assert after['damage.accuracy'] == 1.0 and after['fatigue.accuracy'] == 1.0, report
    assert after['urgency.mae'] < before['urgency.mae'] - 0.1, report
    assert before['damage.accuracy'] + before['fatigue.accuracy'] < 2.0, report
    assert report['original_test_windows'] > 0
    assert all(math.isfinite(v) for v in report['forgetting'].values())
    assert (tmp_path / 'tuned.pt').stat().st_size > 0
    # the fine-tuned student needs an id of its own before it is exported
    from softmaint_core.metadata import load_verified
    from softmaint_train.cli import main as train_main
    export = ['export', '--checkpoint', str(tmp_path / 'tuned.pt'), '--out',
              str(tmp_path / 'tuned' / 'student.onnx')]
    assert train_main(export) == 2
    assert 'give it a model id of its own with --model-id' in capsys.readouterr().err
    assert not (tmp_path / 'tuned').exists()
    assert train_main(export + ['--model-id', 'student-tuned-test']) == 0
    assert load_verified(tmp_path / 'tuned' / 'student.onnx').model_id == 'student-tuned-test'


@pytest.mark.slow
def test_calibration_bags_refit_the_shipped_calibration(tmp_path, capsys):
    import torch
    from softmaint_train.finetune_bags import main
    checkpoint = tiny_student(tmp_path, seed=0)
    starts = [bags.START_NS + k * 100 * 10**9 for k in range(3)]
    labels = {'fatigue_label': FATIGUE, 'damage_label': DAMAGE, 'urgency_label': URGENCY}
    for name, start, seed in zip(('train', 'held', 'cal'), starts, (1, 2, 3)):
        bags.write_sensor_bag(tmp_path / name, 'mcap', seconds=6.0, seed=seed, start_ns=start)
    log = _log(tmp_path, [(start / 1e9, start / 1e9 + 6.0, labels) for start in starts])
    command = ['--checkpoint', str(checkpoint), '--log', str(log), '--train',
               str(tmp_path / 'train'), '--held-out', str(tmp_path / 'held'), '--steps', '5',
               '--fisher-batches', '2', '--max-forgetting', '1.0']
    assert main(command + ['--calibration', str(tmp_path / 'train')]) == 2
    assert 'calibrate on recordings of their own' in capsys.readouterr().err
    # a model with a miss-rate control needs 9 damaged windows for alpha 0.1; the bag has 5
    strict = tiny_student(tmp_path / 'strict', seed=0, **{'calibration.damage_miss_alpha': 0.1})
    assert main(['--checkpoint', str(strict)] + command[2:]
                + ['--calibration', str(tmp_path / 'cal')]) == 2
    assert ('calibration bags hold 5 labelled damaged windows; the model\'s miss-rate control '
            '(damage_miss_alpha 0.1) needs 9') in capsys.readouterr().err
    report_path, out = tmp_path / 'report.json', tmp_path / 'tuned.pt'
    assert main(command + ['--calibration', str(tmp_path / 'cal'), '--out', str(out),
                           '--report', str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report['calibration_windows'] == 5
    fitted = report['calibration']
    assert fitted['temperature_damage'] != 1.0 and fitted['conformal_sets'] == 'marginal'
    assert torch.load(out, weights_only=False)['calibration'] == fitted
    assert 'damage.ece' in report['after']['held_out']


def test_finetune_refuses_a_log_that_labels_nothing(tmp_path, capsys):
    from softmaint_train.finetune_bags import main
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=3.0)
    log = _log(tmp_path, [(1.0, 2.0, {'fatigue_label': 1, 'damage_label': 0,
                                      'urgency_label': 0.2})])
    checkpoint = tmp_path / 'missing.pt'
    assert main(['--checkpoint', str(checkpoint), '--log', str(log), '--train',
                 str(tmp_path / 'bag'), '--held-out', str(tmp_path / 'bag')]) == 2
    assert 'missing.pt' in capsys.readouterr().err


def test_acceptance_needs_a_gain_on_the_bags_and_little_forgetting():
    from softmaint_train.finetune_bags import acceptance

    def metrics(damage, fatigue, mae):
        return {'damage.macro_f1': damage, 'fatigue.macro_f1': fatigue, 'urgency.mae': mae}
    before = {'held_out': metrics(0.5, 0.5, 0.3), 'original': metrics(0.7, 0.8, 0.3)}
    better = {'held_out': metrics(0.6, 0.5, 0.3), 'original': metrics(0.69, 0.79, 0.3)}
    assert acceptance(before, better, 0.02) == []
    forgot = {'held_out': metrics(0.6, 0.5, 0.3), 'original': metrics(0.6, 0.8, 0.3)}
    assert acceptance(before, forgot, 0.02) == [
        'damage macro F1 on the original held-out data fell by 0.100 > 0.02 (0.700 -> 0.600)']
    assert acceptance(before, forgot, 0.2) == []
    same = {'held_out': metrics(0.5, 0.5, 0.3), 'original': before['original']}
    assert acceptance(before, same, 0.02) == ['no improvement on the held-out bags']
    # a better urgency does not excuse a worse damage head on the bags themselves
    traded = {'held_out': metrics(0.2, 0.5, 0.2), 'original': before['original']}
    assert acceptance(before, traded, 0.02) == [
        'damage macro F1 on the held-out bags fell by 0.300 > 0.02 (0.500 -> 0.200)']


def test_bag_windows_read_the_camera_as_the_robot_does(tmp_path):
    # the bag's frames read a signal-to-noise of ~10: under a model's floor of 100 the robot
    # reads no camera, so fine-tuning and its measurements must not either
    import numpy as np
    from softmaint_core.spec import FIELD_SPEC
    from softmaint_train.finetune_bags import LabelSpan, labelled_windows
    bags.write_sensor_bag(tmp_path / 'bag', 'mcap', seconds=5.0, seed=1)
    start = bags.START_NS / 1e9
    spans = [LabelSpan('req-0', start, start + 5.0, FATIGUE, DAMAGE, URGENCY)]
    read = labelled_windows([tmp_path / 'bag'], spans, spec=FIELD_SPEC)
    floored = labelled_windows([tmp_path / 'bag'], spans, spec=FIELD_SPEC.with_min_snr(100.0))
    camera = FIELD_SPEC.names.index('camera')
    assert len(read) == len(floored) > 0
    assert read.arrays['mask'][:, camera].all() and not floored.arrays['mask'][:, camera].any()
    np.testing.assert_array_equal(read.arrays['mask'][:, 1:], floored.arrays['mask'][:, 1:])
    np.testing.assert_array_equal(read.arrays['camera'], floored.arrays['camera'])   # recorded
