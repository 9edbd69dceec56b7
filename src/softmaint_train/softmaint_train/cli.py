"""
softmaint-train <teacher|distill|reproduce|ablate|export|evaluate|bench|finetune|observability>.

Every training command takes --config (YAML) and any number of --set path.to.field=value
overrides; the config is validated before anything runs, and --device auto|cpu|cuda (auto: the
GPU if torch sees one). The same command runs data-parallel under torchrun (docs/distillation.md):
    torchrun --nproc-per-node 2 -m softmaint_train reproduce --config config/train/default.yaml
"""
import argparse
import json
from pathlib import Path
import sys
import time

from softmaint_core.dataset import DatasetError
from softmaint_core.signing import SignatureError
import torch

from .config import ConfigError, load_config, parse_override
from .data import DataError, generator_seed


def _config(args):
    overrides = dict(parse_override(s) for s in args.set or [])
    return load_config(args.config, overrides)


def _add_config(p):
    p.add_argument('--config', default='config/train/default.yaml', help='YAML config')
    p.add_argument('--set', action='append', metavar='PATH=VALUE',
                   help='override a config field, e.g. --set seed=1 (repeatable)')
    p.add_argument('--no-progress', action='store_true', help='hide progress bars')
    add_device(p)


def add_device(p):
    """Add --device (training commands; see distributed.setup)."""
    from .distributed import DEVICES
    p.add_argument('--device', choices=DEVICES, default='auto',
                   help='where to train: auto (a GPU if there is one), cpu or cuda; under '
                   'torchrun each process takes the GPU of its LOCAL_RANK')


def _add_signing_key(p):
    p.add_argument('--signing-key', metavar='PRIVATE.pem',
                   help='sign the exported model with this Ed25519 private key (softmaint-sign '
                   'keygen); without it the model is exported unsigned, which robots refuse')


def _signing_key(args):
    """Read the private key of --signing-key before any training (None without one)."""
    from softmaint_core.signing import load_private_key
    return load_private_key(args.signing_key) if getattr(args, 'signing_key', None) else None


def cmd_reproduce(args) -> int:
    """Teacher, distillation, calibration, evaluation and export of the default model."""
    from .evaluate import write_report
    from .pipeline import run
    from .train import is_main
    cfg = _config(args)
    wants_summary = getattr(args, 'summary', None)     # reproduce only, not distill
    if wants_summary and not (args.protocol and args.test_data and not args.no_export):
        raise ConfigError('--summary needs --protocol, --test-data and the export')
    if wants_summary and cfg.data.calibration_root and _same_seed(cfg.data.calibration_root,
                                                                  args.test_data):
        raise ConfigError(f'data.calibration_root {cfg.data.calibration_root} was generated with '
                          f'the seed of the held-out --test-data {args.test_data}, so it holds '
                          'its episodes: calibrate on a dataset of another seed')
    policy = _summary_inputs(args) if wants_summary else None
    signing_key = _signing_key(args)
    start = time.monotonic()
    out_dir = Path(cfg.runs_dir) / cfg.name
    record = run(cfg, out_dir, export=not args.no_export, progress=not args.no_progress,
                 signing_key=signing_key)
    if not is_main():
        return 0
    record['wall_seconds'] = time.monotonic() - start
    (out_dir / 'record.json').write_text(json.dumps(record, indent=2))
    tag = f'{cfg.name}-f{cfg.data.label_fraction:g}-seed{cfg.seed}'
    command = ' '.join([f'softmaint-train {args.command} --config {args.config}']
                       + [f'--set {s}' for s in args.set or []])
    report = write_report([record], out_dir / f'predictions-{tag}.npz', out_dir / 'report',
                          f'softmaint student {cfg.name}', command)
    m = record['student']['all']
    print(f"done in {record['wall_seconds']:.0f} s: damage F1 {m['damage.macro_f1']:.3f}, "
          f"fatigue F1 {m['fatigue.macro_f1']:.3f}, urgency MAE {m['urgency.mae']:.3f}, "
          f"damage ECE {m['damage.ece']:.3f}, coverage {m['damage.coverage']:.3f}; "
          f"teacher damage F1 {record['teacher']['damage.macro_f1']:.3f}; report {report}")
    if wants_summary:
        print(f'summary {_shipped_summary(args, cfg, record, command, signing_key, policy)}')
    return 0


def _same_seed(root: str, other: str) -> bool:
    """Whether two datasets were generated with one seed (and so share their episodes)."""
    cards = [Path(r) / 'card.json' for r in (root, other)]
    return all(c.is_file() for c in cards) and len(
        {generator_seed(json.loads(c.read_text())) for c in cards}) == 1


def _summary_inputs(args):
    """Check what --summary reads after training (protocol, test data, policy); the policy."""
    from softmaint_core.dataset import Dataset
    from softmaint_sim.profile_eval import profile_policy
    from .pipeline import plan_ablation
    plan_ablation(args.protocol)
    Dataset(args.test_data)
    try:
        return profile_policy(Path('config'), 'default')
    except FileNotFoundError as err:
        raise ConfigError(f'--summary decides with the default profile of config/softmaint.yaml '
                          f'({err}): run from the repository root') from None


def _shipped_summary(args, cfg, record, command: str, signing_key, policy) -> Path:
    """Run the 1 % protocol, evaluate the export on held-out data; write summary and card."""
    from softmaint_sim.profile_eval import evaluate
    from .evaluate import load_records
    from softmaint_core.signing import add_to_card
    from .pipeline import ablate
    from .shipped_summary import card_metrics, summary
    out = Path(cfg.runs_dir) / Path(args.protocol).stem
    results = ablate(args.protocol, out, progress=not args.no_progress)
    metrics = evaluate(Path(record['export']['path']), Path(args.test_data), policy)
    reproduce = (f'{command} --protocol {args.protocol} --test-data {args.test_data} '
                 f'--summary {args.summary}')
    figures = summary(load_records(results), record['wall_seconds'],
                      record['teacher_seconds'], metrics,
                      1.0 - cfg.calibration.conformal_alpha,
                      [reproduce, f'softmaint-train ablate --config {args.protocol} --out {out}'],
                      Path(args.test_data))
    add_to_card(Path(record['export']['path']), card_metrics(figures), signing_key)
    path = Path(args.summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + '\n')
    return path


def cmd_teacher(args) -> int:
    """Train (or reuse) only the teacher of the config's seed."""
    from .data import make_splits, open_dataset
    from .pipeline import get_teacher
    cfg = _config(args)
    torch.set_num_threads(cfg.threads)
    ds = open_dataset(cfg.data.root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    get_teacher(cfg, ds, splits, Path(cfg.runs_dir) / cfg.name, not args.no_progress)
    return 0


def cmd_distill(args) -> int:
    """Run the full protocol without export (teacher reused if present)."""
    args.no_export = True
    return cmd_reproduce(args)


def cmd_ablate(args) -> int:
    """All seeds x label fractions x variants of an ablation config; then the report."""
    from .evaluate import load_records, write_report
    from .pipeline import ablate
    from .train import is_main
    results = ablate(args.config, Path(args.out), progress=not args.no_progress,
                     base=args.base)
    if not is_main():
        return 0
    records = load_records(results)
    pred = sorted(Path(args.out).glob('predictions-distilled-f1-seed0.npz'))
    report = write_report(records, pred[0] if pred else None,
                          Path(args.report) if args.report else Path(args.out) / 'report',
                          'softmaint distillation: ablations',
                          f'softmaint-train ablate --config {args.config} --out {args.out}')
    print(f'{len(records)} runs; report {report}')
    return 0


def cmd_evaluate(args) -> int:
    """(Re)write a report from a results.jsonl (and a predictions file for the plots)."""
    from .evaluate import load_records, write_report
    records = load_records(args.results)
    report = write_report(records, Path(args.predictions) if args.predictions else None,
                          Path(args.out), args.title, args.command or 'softmaint-train evaluate')
    print(report)
    return 0


def cmd_export(args) -> int:
    """Re-export a student checkpoint (uses the calibration stored in it)."""
    from .pipeline import export_student
    from .checkpoints import load_checkpoint
    signing_key = _signing_key(args)
    student, ckpt = load_checkpoint(args.checkpoint)
    from .config import config_from_dict
    cfg = config_from_dict(ckpt['config'])
    if args.out:
        cfg.export.out = args.out
    if args.model_id:
        cfg.export.model_id = args.model_id
    elif 'finetuned_from' in ckpt:
        print('softmaint-train export: this checkpoint was fine-tuned from '
              f"{ckpt['finetuned_from']}; give it a model id of its own with --model-id "
              f'(the config names {cfg.export.model_id!r}, the model it started from)',
              file=sys.stderr)
        return 2
    metrics = {}
    if args.metrics:
        metrics = json.loads(Path(args.metrics).read_text())['student']['all']
    print(json.dumps(export_student(cfg, student, ckpt['stats'], ckpt['calibration'], metrics,
                                    Path(args.checkpoint), signing_key), indent=2))
    return 0


def cmd_bench(args) -> int:
    """Latency of onnxruntime vs torch eager for the exported student."""
    from .bench import bench, format_bench
    from .checkpoints import load_checkpoint
    student, _ = load_checkpoint(args.checkpoint)
    result = bench(student, args.onnx, runs=args.runs)
    print(format_bench(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def cmd_finetune(args) -> int:
    """Fine-tune a student on new labelled field windows with (or without) EWC."""
    from .checkpoints import load_checkpoint, remove_state, save_checkpoint
    from .config import config_from_dict
    from .data import make_splits, open_dataset, Windows
    from .evaluate import labels_of, metrics_of, student_outputs
    from .finetune_bags import old_data_windows
    from .train import finetune_ewc, fisher_diagonal, is_main
    student, ckpt = load_checkpoint(args.checkpoint)
    cfg = config_from_dict(ckpt['config'])
    torch.set_num_threads(cfg.threads)
    old_train, old_test = old_data_windows(args.old_data or cfg.data.root, cfg)
    new = open_dataset(args.new_data)
    s_new = make_splits(new.array('episode'), new.array('domain'), cfg.data)
    fisher = fisher_diagonal(student, old_train, ckpt['stats'], seed=cfg.seed)
    new_train = Windows.load(new, 'field', s_new.field_train)
    student = finetune_ewc(student, cfg, new_train, ckpt['stats'], fisher, args.ewc,
                           steps=args.steps, state=args.out and Path(args.out + '.state'))
    if not is_main():
        return 0
    calib = ckpt['calibration']
    for name, w in (('old', old_test), ('new', Windows.load(new, 'field', s_new.field_test))):
        m = metrics_of(student_outputs(student, w, ckpt['stats']), labels_of(w), calib)
        print(f"{name} test: damage F1 {m['damage.macro_f1']:.3f} fatigue F1 "
              f"{m['fatigue.macro_f1']:.3f} urgency MAE {m['urgency.mae']:.3f}")
    if args.out:
        save_checkpoint(args.out, 'student', student, cfg, stats=ckpt['stats'],
                        calibration=calib, finetuned_from=str(args.checkpoint))
        remove_state(Path(args.out + '.state'))
    return 0


def cmd_observability(args) -> int:
    """Learnability probe: damage/fatigue from the privileged state vs a view's sensors."""
    from .observability import ObservabilityError, ProbeConfig, run, write_outputs
    options = ('epochs', 'privileged_epochs', 'test_fraction', 'split_seed', 'threads',
               'view', 'frame_stride', 'frame_pool')
    given = {k: getattr(args, k) for k in options if getattr(args, k) is not None}
    cfg = ProbeConfig(seeds=tuple(args.seeds), max_episodes=args.max_episodes,
                      shuffle_labels=args.shuffle_labels, progress=not args.no_progress,
                      modalities=tuple(args.modalities or ()), **given)
    try:
        summary = run(args.data, cfg)
    except ObservabilityError as err:
        print(f'softmaint-train observability: {err}', file=sys.stderr)
        return 1
    summary['command'] = _observability_command(args, cfg)
    out = write_outputs(summary, Path(args.out))
    print(f"privileged damage F1 {summary['privileged_damage_f1']:.3f}, sensors damage F1 "
          f"{summary['sensors_damage_f1']:.3f} (chance {summary['chance_damage_f1']:.3f}) on "
          f"{summary['test_episodes']} test episodes, {summary['wall_seconds']:.0f} s; "
          f'report {out}')
    return 0


def _observability_command(args, cfg) -> str:
    """Return the effective command line of an observability run (every setting spelt out)."""
    words = ['softmaint-train observability', f'--data {args.data}', f'--out {args.out}',
             '--seeds ' + ' '.join(map(str, cfg.seeds)), f'--epochs {cfg.epochs}',
             f'--privileged-epochs {cfg.privileged_epochs}',
             f'--test-fraction {cfg.test_fraction:g}', f'--split-seed {cfg.split_seed}',
             f'--threads {cfg.threads}', f'--view {cfg.view}',
             f'--frame-stride {cfg.frame_stride}', f'--frame-pool {cfg.frame_pool}']
    if cfg.max_episodes:
        words.append(f'--max-episodes {cfg.max_episodes}')
    if cfg.modalities:
        words.append('--modalities ' + ' '.join(cfg.modalities))
    if cfg.shuffle_labels:
        words.append('--shuffle-labels')
    return ' '.join(words)


def parser() -> argparse.ArgumentParser:
    """Build the argument parser of softmaint-train."""
    p = argparse.ArgumentParser(prog='softmaint-train', description=__doc__.split('\n')[1])
    sub = p.add_subparsers(dest='command', required=True)
    for name, fn in (('reproduce', cmd_reproduce), ('distill', cmd_distill),
                     ('teacher', cmd_teacher)):
        s = sub.add_parser(name, help=fn.__doc__)
        _add_config(s)
        if fn is cmd_reproduce:
            s.add_argument('--no-export', action='store_true', help='skip the ONNX export')
            _add_signing_key(s)
            s.add_argument('--summary', metavar='SUMMARY.json',
                           help="also write the recipe's headline figures here "
                           '(softmaint_train.shipped_summary); needs --protocol and --test-data')
            s.add_argument('--protocol', metavar='PROTOCOL.yaml',
                           help='ablation config of the 1 %% labels protocol (distilled and '
                           'scratch variants, several seeds), run into RUNS_DIR/<its name>')
            s.add_argument('--test-data', metavar='DIR',
                           help='held-out field dataset the exported model is evaluated on')
        s.set_defaults(fn=fn)
    s = sub.add_parser('ablate', help=cmd_ablate.__doc__)
    s.add_argument('--config', default='config/train/ablation.yaml')
    s.add_argument('--base', help="training config to run on instead of the file's base "
                   '(e.g. config/train/shipped.yaml)')
    s.add_argument('--out', default='runs/ablation')
    s.add_argument('--report', help='report directory (default: OUT/report, beside the runs)')
    s.add_argument('--no-progress', action='store_true')
    add_device(s)
    s.set_defaults(fn=cmd_ablate)
    s = sub.add_parser('evaluate', help=cmd_evaluate.__doc__)
    s.add_argument('--results', required=True, help='results.jsonl or record lines')
    s.add_argument('--predictions', help='predictions-*.npz for the plots')
    s.add_argument('--out', default='docs/reports/latest')
    s.add_argument('--title', default='softmaint evaluation')
    s.add_argument('--command', help='command line to print in the report')
    s.set_defaults(fn=cmd_evaluate)
    s = sub.add_parser('export', help=cmd_export.__doc__)
    s.add_argument('--checkpoint', required=True)
    s.add_argument('--out', help='ONNX path (default: the config export.out)')
    s.add_argument('--metrics', help='record.json whose test metrics go into the metadata')
    s.add_argument('--model-id', help="the model card's id (default: the config's "
                   'export.model_id; required for a fine-tuned checkpoint)')
    _add_signing_key(s)
    s.set_defaults(fn=cmd_export)
    s = sub.add_parser('bench', help=cmd_bench.__doc__)
    s.add_argument('--onnx', default='models/student.onnx')
    s.add_argument('--checkpoint', default='models/student.pt')
    s.add_argument('--runs', type=int, default=1000)
    s.add_argument('--json', help='also write the numbers to this file')
    s.set_defaults(fn=cmd_bench)
    s = sub.add_parser('finetune', help=cmd_finetune.__doc__)
    s.add_argument('--checkpoint', default='models/student.pt')
    s.add_argument('--new-data', required=True, help='dataset with the new field episodes')
    s.add_argument('--old-data', help='dataset the student was trained on (default: config)')
    s.add_argument('--ewc', type=float, default=100.0, help='EWC strength lambda (0 = off)')
    s.add_argument('--steps', type=int, default=200)
    s.add_argument('--out', help='where to save the fine-tuned checkpoint')
    add_device(s)
    s.set_defaults(fn=cmd_finetune)
    s = sub.add_parser('observability', help=cmd_observability.__doc__)
    s.add_argument('--data', required=True, help='dataset directory (softmaint-dataset generate)')
    s.add_argument('--out', default='docs/reports/observability',
                   help='report directory: summary.json, summary.md, confusion.png')
    s.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    s.add_argument('--epochs', type=int, help='epochs of the sensor probe (default 40)')
    s.add_argument('--privileged-epochs', type=int,
                   help='epochs of the privileged probe (default 60)')
    s.add_argument('--max-episodes', type=int, help='a seeded subset of this many episodes')
    s.add_argument('--test-fraction', type=float,
                   help='fraction of episodes held out for the test (default 0.2)')
    s.add_argument('--split-seed', type=int, help='seed of the episode split (default 0)')
    s.add_argument('--threads', type=int, help='torch CPU threads (default 2)')
    s.add_argument('--view', choices=('teacher', 'field'),
                   help='whose sensors the sensor probe reads (default teacher; field: the '
                        "robot's sparse view with its sensor dropouts)")
    s.add_argument('--frame-stride', type=int, help='use every n-th camera frame (default 2)')
    s.add_argument('--frame-pool', type=int,
                   help='average-pool camera frames n x n (default 2)')
    s.add_argument('--modalities', nargs='+', metavar='NAME',
                   help="the sensor probe reads only these of the view's modalities (default: "
                        'all), e.g. --modalities camera: what the camera alone carries')
    s.add_argument('--shuffle-labels', action='store_true',
                   help='control: permute the training labels (F1 should fall to chance)')
    s.add_argument('--no-progress', action='store_true', help='hide progress bars')
    s.set_defaults(fn=cmd_observability)
    return p


def main(argv=None) -> int:
    """Entry point of the softmaint-train console script."""
    args = parser().parse_args(argv)
    from . import distributed
    from .pipeline import ExportError
    try:
        if hasattr(args, 'device'):
            distributed.setup(args.device)
        return args.fn(args)
    except ConfigError as err:
        print(f'softmaint-train: config error: {err}', file=sys.stderr)
        return 2
    except (DataError, DatasetError) as err:
        print(f'softmaint-train: data error: {err}', file=sys.stderr)
        return 2
    except (distributed.DeviceError, SignatureError, ExportError, OSError) as err:
        print(f'softmaint-train: {err}', file=sys.stderr)
        return 2
    finally:
        distributed.teardown()


if __name__ == '__main__':
    sys.exit(main())
