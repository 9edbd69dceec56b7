"""
Fine-tune the student from field recordings: bags plus labels from the maintenance log.

    softmaint-finetune-bags --checkpoint models/student.pt --log maintenance.db
        --train BAG [BAG ...] --held-out BAG [BAG ...] [--calibration BAG [BAG ...]]
        [--old-data data/sim-v1] [--params config/softmaint.yaml] [--ewc 100] [--steps 200]
        [--max-forgetting 0.02] [--out student-ft.pt] [--report report.json]

Labels: an operator who acknowledges an assistance request (softmaint/acknowledge) may give
the fatigue class, damage class and urgency they observed; the agent writes them into the
maintenance log. Every window of the bags whose end lies between the request's first decision
and its acknowledgement gets those labels (the condition the operator was asked about).
Acknowledgements without all three labels are counted and not used.

Windows are rebuilt exactly as onboard (the offline replay of softmaint-evaluate-bag, with the
model's camera floor: frames it cannot read are a missing camera, and stay so). The
student is fine-tuned with EWC (softmaint_train.train.fisher_diagonal on the original training
data, then finetune_ewc), and the report gives metrics before and after on the held-out bags
(new field data) and on the original data's held-out field split (forgetting). A student that
forgets more than --max-forgetting of a macro F1 there, or does not improve the held-out bags,
is refused: the report says why, no checkpoint is written and the exit code is 3.

With --calibration the fine-tuned student's temperatures and conformal thresholds are refit on
the labelled windows of those bags (softmaint_train.calibrate, the config's alpha and kind of
sets), which must be neither training nor held-out bags; otherwise it keeps the calibration of
the original data. The held-out metrics after fine-tuning use the calibration it ships with.

Under torchrun (`torchrun --nproc-per-node 2 -m softmaint_train.finetune_bags ...`) the
Fisher and the fine-tuning run data-parallel; every process reads the bags, rank 0 alone
measures and writes the checkpoint and the report. With --out the fine-tuning saves a
resumable state beside it (OUT.state) and a rerun of the same command continues from it.
"""
import argparse
from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from softmaint_bag.evaluate import load_params, Params, replay
from softmaint_core.calibration import conformal_min_windows
from softmaint_core.maintenance_log import MaintenanceLog
from softmaint_core.spec import FIELD_SPEC, MODALITIES
from softmaint_core.taxonomy import DAMAGE_TYPES


@dataclass(frozen=True)
class LabelSpan:
    """Labels an operator gave for the time from a request's opening to its answer."""

    request_id: str
    start: float            # first decision of the request [s]
    end: float              # acknowledgement [s]
    fatigue: int
    damage: int
    urgency: float


def label_spans(log_path: Path) -> Tuple[List[LabelSpan], int]:
    """Return the labelled spans of a log and how many acknowledgements lacked labels."""
    with MaintenanceLog(log_path, create=False) as log:
        entries = sorted(log.query(), key=lambda e: e.stamp)
    opened, spans, unlabelled = {}, [], 0
    for entry in entries:
        if entry.kind == 'decision' and entry.request_id:
            opened.setdefault(entry.request_id, entry.stamp)
        if entry.kind != 'acknowledgement':
            continue
        ev = entry.evidence
        fatigue, damage, urgency = (ev.get('fatigue_label', -1), ev.get('damage_label', -1),
                                    ev.get('urgency_label'))
        if fatigue is None or damage is None or fatigue < 0 or damage < 0 or urgency is None \
                or math.isnan(urgency):
            unlabelled += 1
            continue
        spans.append(LabelSpan(entry.request_id, opened.get(entry.request_id, entry.stamp),
                               entry.stamp, int(fatigue), int(damage), float(urgency)))
    return spans, unlabelled


def labelled_windows(bags: Sequence[Path], spans: Sequence[LabelSpan],
                     params: Params = Params(), spec=FIELD_SPEC):
    """Return softmaint_train Windows of every labelled window of `bags` with any input."""
    from softmaint_train.data import Windows
    rows = []

    def on_window(end_ns, window):
        end = end_ns * 1e-9
        span = next((s for s in spans if s.start <= end <= s.end), None)
        if span is not None and window.mask.any():
            rows.append((window, span))

    for bag in bags:
        replay(Path(bag), spec, params, on_window)
    arrays = {name: np.stack([w.raw()[name] for w, _ in rows]) if rows else
              np.zeros((0,) + spec.modality(name).shape, np.float32) for name in MODALITIES}
    arrays['mask'] = np.array([w.mask for w, _ in rows], bool).reshape(-1, len(MODALITIES))
    arrays['fatigue'] = np.array([s.fatigue for _, s in rows], np.int64)
    arrays['damage'] = np.array([s.damage for _, s in rows], np.int64)
    arrays['urgency'] = np.array([s.urgency for _, s in rows], np.float32)
    arrays['privileged'] = np.zeros((len(rows), 1), np.float32)   # not used by fine-tuning
    arrays['row'] = np.arange(len(rows))
    return Windows(arrays, spec)


def student_metrics(student, windows, stats, calibration) -> Dict[str, float]:
    """Accuracy, macro F1, ECE, coverage and urgency MAE of `student` on `windows`."""
    from softmaint_train.evaluate import labels_of, metrics_of, student_outputs
    values = metrics_of(student_outputs(student, windows, stats), labels_of(windows),
                        calibration)
    return {f'{head}.{k}': float(values[f'{head}.{k}']) for head in ('fatigue', 'damage')
            for k in ('accuracy', 'macro_f1', 'ece', 'coverage')} | {
                'urgency.mae': float(values['urgency.mae'])}


def old_data_windows(root: Path, cfg):
    """(training windows for the Fisher, held-out field windows) of the original dataset."""
    from softmaint_train.data import make_splits, open_dataset, Windows
    data = open_dataset(root)
    splits = make_splits(data.array('episode'), data.array('domain'), cfg.data)
    train = np.sort(np.concatenate([splits.teacher_train, splits.field_train]))
    return Windows.load(data, 'field', train), Windows.load(data, 'field', splits.field_test)


def check_miss_rate_windows(cal, miss_alpha: float) -> None:
    """Refuse, before any training, calibration bags too small for the miss-rate control."""
    needed = conformal_min_windows(miss_alpha) if miss_alpha else 0
    damaged = int(np.count_nonzero(cal.arrays['damage'] != DAMAGE_TYPES.index('none')))
    if damaged < needed:
        raise ValueError(f'the calibration bags hold {damaged} labelled damaged windows; the '
                         f"model's miss-rate control (damage_miss_alpha {miss_alpha:g}) needs "
                         f'{needed}: record more, or leave out --calibration to keep the '
                         "original data's calibration")


def acceptance(before: Dict[str, Dict[str, float]], after: Dict[str, Dict[str, float]],
               max_forgetting: float) -> List[str]:
    """
    Reasons to refuse a fine-tuned student; none when it may replace the original.

    It must improve the held-out bags (a macro F1 up or the urgency MAE down) and lose at most
    `max_forgetting` of either macro F1 there and on the original data's held-out field split.
    """
    reasons = []
    for split, name in (('original', 'the original held-out data'),
                        ('held_out', 'the held-out bags')):
        for head in ('damage', 'fatigue'):
            key = f'{head}.macro_f1'
            lost = before[split][key] - after[split][key]
            if lost > max_forgetting:
                reasons.append(f'{head} macro F1 on {name} fell by {lost:.3f} > '
                               f'{max_forgetting:g} ({before[split][key]:.3f} -> '
                               f'{after[split][key]:.3f})')
    held, was = after['held_out'], before['held_out']
    if not (held['damage.macro_f1'] > was['damage.macro_f1']
            or held['fatigue.macro_f1'] > was['fatigue.macro_f1']
            or held['urgency.mae'] < was['urgency.mae']):
        reasons.append('no improvement on the held-out bags')
    return reasons


def finetune_from_bags(checkpoint: Path, log_path: Path, train_bags: Sequence[Path],
                       held_out_bags: Sequence[Path], old_data: Optional[Path] = None,
                       params: Params = Params(), strength: float = 100.0, steps: int = 200,
                       out: Optional[Path] = None, fisher_batches: int = 20,
                       max_forgetting: float = 0.02,
                       calibration_bags: Sequence[Path] = ()) -> Dict[str, object]:
    """
    Fine-tune a student checkpoint on labelled bag windows; return before/after metrics.

    The checkpoint `out` is written only when the result passes `acceptance`; the report says
    why it was refused otherwise.
    """
    import torch
    from softmaint_train.config import config_from_dict
    from softmaint_train.checkpoints import load_checkpoint, remove_state, save_checkpoint
    from softmaint_train.train import finetune_ewc, fisher_diagonal, is_main
    student, ckpt = load_checkpoint(checkpoint)
    cfg = config_from_dict(ckpt['config'])
    torch.set_num_threads(cfg.threads)
    stats, calibration = ckpt['stats'], ckpt['calibration']
    spans, unlabelled = label_spans(log_path)
    # the robot's windows: a camera below the model's floor is unreadable there, so here too
    spec = FIELD_SPEC.with_min_snr(calibration.get('camera_min_snr', 0.0))
    new = labelled_windows(train_bags, spans, params, spec)
    held = labelled_windows(held_out_bags, spans, params, spec)
    cal = labelled_windows(calibration_bags, spans, params, spec) if calibration_bags else None
    if len(new) == 0 or len(held) == 0 or (cal is not None and len(cal) == 0):
        raise ValueError(f'{len(new)} labelled training, {len(held)} held-out and '
                         f'{0 if cal is None else len(cal)} calibration windows: the log '
                         f'{log_path} labels no window of some bags ({len(spans)} labelled '
                         f'acknowledgements, {unlabelled} without labels)')
    if set(map(Path, calibration_bags)) & set(map(Path, [*train_bags, *held_out_bags])):
        raise ValueError('a calibration bag is also a training or held-out bag: calibrate on '
                         'recordings of their own')
    if cal is not None:
        check_miss_rate_windows(cal, cfg.calibration.damage_miss_alpha)
    old_train, old_test = old_data_windows(old_data or Path(cfg.data.root), cfg)

    def measure(calibration):
        return {'held_out': student_metrics(student, held, stats, calibration),
                'original': student_metrics(student, old_test, stats, calibration)}

    before = measure(calibration) if is_main() else {}
    fisher = fisher_diagonal(student, old_train, stats, batches=fisher_batches, seed=cfg.seed)
    state = Path(f'{out}.state') if out is not None else None
    student = finetune_ewc(student, cfg, new, stats, fisher, strength, steps=steps,
                           progress=False, state=state)
    if not is_main():
        return {}
    if cal is not None:
        from softmaint_train.calibrate import calibrate
        from softmaint_train.evaluate import labels_of, student_outputs
        # the camera's floor stays the original data's: bags hold too few windows for it
        calibration = {**calibration, **calibrate(student_outputs(student, cal, stats),
                                                  labels_of(cal), cfg.calibration)}
    after = measure(calibration)
    refusal = acceptance(before, after, max_forgetting)
    if out is not None:
        if not refusal:
            save_checkpoint(out, 'student', student, cfg, stats=stats,
                            calibration=calibration, finetuned_from=str(checkpoint))
        remove_state(state)
    return {'accepted': not refusal, 'refusal': refusal, 'max_forgetting': max_forgetting,
            'checkpoint': str(checkpoint), 'labelled_spans': len(spans),
            'unlabelled_acknowledgements': unlabelled, 'train_windows': len(new),
            'held_out_windows': len(held), 'original_test_windows': len(old_test),
            'calibration_windows': 0 if cal is None else len(cal), 'calibration': calibration,
            'ewc': strength, 'steps': steps, 'before': before, 'after': after,
            'forgetting': {k: after['original'][k] - before['original'][k]
                           for k in before['original']}}


def main(args=None) -> int:
    """Entry point of softmaint-finetune-bags."""
    parser = argparse.ArgumentParser(prog='softmaint-finetune-bags',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', type=Path, required=True, help='student .pt')
    parser.add_argument('--log', type=Path, required=True, help='maintenance log (SQLite)')
    parser.add_argument('--train', type=Path, nargs='+', required=True, help='bags to learn')
    parser.add_argument('--held-out', type=Path, nargs='+', required=True,
                        help='bags to measure on (labelled by the same log)')
    parser.add_argument('--calibration', type=Path, nargs='+', default=(),
                        help='bags whose labelled windows refit the calibration (default: '
                        "keep the original data's)")
    parser.add_argument('--old-data', type=Path,
                        help="original dataset (default: the checkpoint's data.root)")
    parser.add_argument('--params', type=Path, help="the suite's parameter YAML")
    parser.add_argument('--ewc', type=float, default=100.0, help='EWC strength')
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--fisher-batches', type=int, default=20,
                        help='batches of original training data for the Fisher diagonal')
    parser.add_argument('--max-forgetting', type=float, default=0.02,
                        help='largest drop of damage or fatigue macro F1, on the original '
                        "data's held-out split and on the held-out bags, that a fine-tuned "
                        'student may show (default 0.02)')
    parser.add_argument('--out', type=Path,
                        help='fine-tuned checkpoint to write (only when it is accepted)')
    parser.add_argument('--report', type=Path, help='write the report JSON here')
    from softmaint_train.cli import add_device
    add_device(parser)
    options = parser.parse_args(sys.argv[1:] if args is None else args)
    from softmaint_bag.reading import BagError
    from softmaint_train import distributed
    try:
        distributed.setup(options.device)
        report = finetune_from_bags(options.checkpoint, options.log, options.train,
                                    options.held_out, options.old_data,
                                    load_params(options.params), options.ewc, options.steps,
                                    options.out, options.fisher_batches,
                                    options.max_forgetting, options.calibration)
    except (BagError, ValueError, OSError, RuntimeError) as err:
        print(f'softmaint-finetune-bags: {err}', file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    if not report:          # a rank other than 0: rank 0 reports
        return 0
    text = json.dumps(report, indent=2)
    if options.report:
        options.report.write_text(text + '\n')
    print(text)
    if report['refusal']:
        print('softmaint-finetune-bags: refused, no fine-tuned student written: '
              + '; '.join(report['refusal']) + '. Record more varied conditions, raise --ewc, '
              'or accept more forgetting with --max-forgetting.', file=sys.stderr)
        return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
