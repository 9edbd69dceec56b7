"""
One experiment end to end: teacher -> distillation -> calibration -> evaluation -> export.

`run` is what `softmaint-train reproduce` calls; `ablate` repeats it over seeds, label
fractions and config variants and appends one JSON record per run to results.jsonl (runs that
are already in the file are skipped, so an interrupted ablation resumes).
"""
from dataclasses import asdict, dataclass, field, replace
import hashlib
import json
import os
from pathlib import Path
import shutil
import time
from typing import Dict, Optional, Tuple

import numpy as np
from softmaint_core.dataset import card_digest
from softmaint_core.metadata import metadata_path
from softmaint_core.signing import sign_export, signature_path
from softmaint_core.spec import FIELD_SPEC, MODALITIES
from softmaint_core.window import unreadable
import torch

from .calibrate import calibrate, camera_min_snr
from .checkpoints import config_digest, model_from_checkpoint, remove_state, save_checkpoint
from .config import (apply_override, config_from_dict, ConfigError, flatten_config,
                     read_mapping, read_yaml_mapping, TrainConfig)
from .data import (calibration_source, calibration_windows, DataError, DomainStats,
                   fit_domain_stats, fit_normalisation, labelled_rows, make_splits,
                   onboard_stats, open_dataset, Windows)
from .distributed import from_main, gather_objects
from .evaluate import (evaluate_student, labels_of, save_predictions, student_outputs,
                       teacher_metrics)
from .export import check_parity, export_onnx, ParityError, write_metadata
from .train import (dist_info, is_main, TEACHER_OUTPUTS,
                    teacher_outputs_from_dataset, train_student, train_teacher)


def _log(msg: str) -> None:
    if is_main():
        print(f'[softmaint-train] {msg}', flush=True)


def _calibration_digest(cfg: TrainConfig) -> str:
    return card_digest(cfg.data.calibration_root) if cfg.data.calibration_root else ''


def get_teacher(cfg: TrainConfig, ds, splits, out_dir: Path, progress: bool = True):
    """
    Train the teacher of cfg.seed, or load it from out_dir if it was trained already.

    Under torchrun rank 0 reads the checkpoint and sends it to the other ranks.
    """
    path = Path(out_dir) / f'teacher-seed{cfg.seed}.pt'
    dataset = card_digest(cfg.data.root)
    saved = from_main(_reusable_teacher, path, asdict(cfg.teacher), splits.sizes(), dataset)
    if saved is not None:
        _log(f'teacher: reusing {path}')
        teacher, ckpt = model_from_checkpoint(saved)
        return teacher, ckpt['stats']
    _log(f'teacher: loading {len(splits.teacher_train)} teacher-view windows')
    windows = Windows.load(ds, 'teacher', splits.teacher_train)
    stats = fit_normalisation(windows)
    start = time.monotonic()
    state = path.with_suffix('.state.pt')
    teacher = train_teacher(cfg, windows, stats, progress, state=state)
    _log(f'teacher: trained in {time.monotonic() - start:.0f} s')
    if is_main():
        save_checkpoint(path, 'teacher', teacher, cfg, stats=stats, splits=splits.sizes(),
                        dataset=dataset, privileged_dim=windows.arrays['privileged'].shape[1],
                        privileged_stats=[s.tolist() for s in teacher.privileged_stats])
    remove_state(state)
    del windows
    return teacher, stats


def _reusable_teacher(path: Path, teacher_cfg: dict, sizes: dict,
                      dataset: str) -> Optional[dict]:
    """
    Return the checkpoint at path if it was trained with this config, split and dataset.

    The dataset is told by its card's SHA-256: regenerated data (another generator version,
    another profile) keeps the split sizes of the same seed but not the card.
    """
    if not path.is_file():
        return None
    # compare before building: a teacher of another architecture cannot even be loaded
    saved = torch.load(path, map_location='cpu', weights_only=False)
    # through the config's defaults: a switch added later with the old behaviour as its
    # default does not make an older teacher another architecture
    saved_cfg = asdict(config_from_dict(saved['config']).teacher)
    if (saved_cfg == teacher_cfg and saved['splits'] == sizes
            and saved.get('dataset') == dataset):
        return saved
    _log(f'teacher: {path} was trained with another config, split or dataset; retraining')
    return None


def teacher_fingerprint(teacher, stats) -> str:
    """SHA-256 of the teacher's weights and input statistics: whose outputs a cache holds."""
    digest = hashlib.sha256()
    for name, value in teacher.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().numpy().tobytes())
    digest.update(json.dumps(asdict(stats) if isinstance(stats, DomainStats) else stats,
                             sort_keys=True).encode())
    return digest.hexdigest()


def _read_cache(path: Path, rows: np.ndarray, fingerprint: str):
    if path.is_file():
        data = np.load(path)
        if (np.array_equal(data['rows'], rows) and 'teacher' in data.files
                and str(data['teacher']) == fingerprint
                and set(TEACHER_OUTPUTS) <= set(data.files)):
            return {k: data[k] for k in data.files if k not in ('rows', 'teacher')}
    return None


def teacher_cache(teacher, ds, rows, stats, path: Path, **kwargs):
    """
    Teacher outputs on `rows`, from path if it holds exactly these rows of this teacher.

    It must hold every output TEACHER_OUTPUTS names: a cache of an older version is recomputed.

    Under torchrun every rank computes its share of the rows and rank 0 writes the file.
    """
    fingerprint = teacher_fingerprint(teacher, stats)
    cached = from_main(_read_cache, path, rows, fingerprint)
    if cached is not None:
        return cached
    rank, world = dist_info()
    mine = np.array_split(rows, world)[rank]
    parts = gather_objects(teacher_outputs_from_dataset(teacher, ds, mine, stats, **kwargs)
                           if len(mine) else None)
    parts = [p for p in parts if p is not None]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if is_main():
        np.savez(path, rows=rows, teacher=np.array(fingerprint), **out)
    return out


def run(cfg: TrainConfig, out_dir: Path, export: bool = False, progress: bool = True,
        teacher_override: Optional[Tuple] = None, teacher_seed: Optional[int] = None,
        signing_key=None) -> Dict:
    """
    Run the protocol once for cfg (its seed and label fraction); return the run record.

    teacher_override = (teacher, stats) trained with seed teacher_seed (default: cfg.seed).
    The export is signed with signing_key (an Ed25519 private key) when one is given.
    """
    teacher_seed = cfg.seed if teacher_seed is None else teacher_seed
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    if is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ds = open_dataset(cfg.data.root)
    episode, domain = ds.array('episode'), ds.array('domain')
    splits = make_splits(episode, domain, cfg.data)
    _log(f'data {cfg.data.root}: {len(ds)} windows; splits {splits.sizes()}')
    min_snr = _camera_floor(cfg, ds, splits)     # before training: it may refuse the data
    extra_calibration = calibration_source(ds, cfg.data)    # and so may calibration data

    teacher_started = time.monotonic()
    teacher, t_stats = teacher_override or get_teacher(cfg, ds, splits, out_dir, progress)
    teacher_seconds = time.monotonic() - teacher_started   # ~0 when a trained one was reused
    if cfg.data.normalisation == 'per_domain':
        # unlabelled field-domain teacher views of the student's pool: no field label is used
        t_stats = DomainStats(t_stats, fit_normalisation(
            Windows.load(ds, 'teacher', splits.field_train)))
    pool_all = np.sort(np.concatenate([splits.teacher_train, splits.field_train]))
    labelled = np.sort(labelled_rows(splits.field_train, episode, cfg.data.label_fraction,
                                     cfg.seed))
    _log(f'student: pool {len(pool_all)} windows, {len(labelled)} labelled '
         f'({cfg.data.label_fraction:g} of field-train episodes)')
    windows = Windows.load(ds, 'field', pool_all)
    stats = (fit_domain_stats(windows) if cfg.data.normalisation == 'per_domain'
             else fit_normalisation(windows))
    lab_pos = np.searchsorted(pool_all, labelled)
    t_out = None
    if cfg.distill.use_teacher:
        t_out = teacher_cache(teacher, ds, pool_all, t_stats,
                              out_dir / f'teacher-seed{teacher_seed}-pool.npz')
    tag = f'{cfg.name}-f{cfg.data.label_fraction:g}-seed{cfg.seed}'
    state = out_dir / f'student-{tag}.state.pt'
    start = time.monotonic()
    student = train_student(cfg, windows, lab_pos, stats, t_out, progress, state=state)
    train_time = time.monotonic() - start
    del windows
    t_test = teacher_cache(teacher, ds, splits.field_test, t_stats,
                           out_dir / f'teacher-seed{teacher_seed}-test.npz')
    _, world = dist_info()
    if not is_main():
        return {}

    cal = calibration_windows(ds, splits, extra_calibration)
    _log(f'calibration: {len(cal)} field windows')
    calib = calibrate(student_outputs(student, cal, stats, mask=readable(cal, min_snr)),
                      labels_of(cal), cfg.calibration)
    if min_snr is not None:
        calib['camera_min_snr'] = min_snr
    test = Windows.load(ds, 'field', splits.field_test)
    results, test_out = evaluate_student(student, test, stats, calib, cfg.data.lighting_shift)
    record = {
        'variant': cfg.name, 'seed': cfg.seed, 'label_fraction': cfg.data.label_fraction,
        'teacher_seed': teacher_seed,
        'labelled_windows': int(len(labelled)), 'splits': splits.sizes(),
        'calibration': calib, 'student': results,
        'teacher': teacher_metrics(t_test, labels_of(test)),
        'teacher_seconds': teacher_seconds, 'train_seconds': train_time,
        'total_seconds': time.monotonic() - started,
        'world_size': world, 'dataset_card_sha256': card_digest(cfg.data.root),
        'config_sha256': config_digest(cfg),
        'calibration_card_sha256': _calibration_digest(cfg),
    }
    save_predictions(out_dir / f'predictions-{tag}.npz', test_out, labels_of(test), calib)
    save_checkpoint(out_dir / f'student-{tag}.pt', 'student', student, cfg,
                    stats=onboard_stats(stats), calibration=calib)
    remove_state(state)
    if export:
        record['export'] = export_student(cfg, student, onboard_stats(stats), calib,
                                          results['all'], out_dir / f'student-{tag}.pt',
                                          signing_key)
    record['total_seconds'] = time.monotonic() - started
    return record


def _camera_floor(cfg: TrainConfig, ds, splits) -> Optional[float]:
    """
    Return the camera's readability floor from the unlabelled field train + calibration windows.

    None without calibration.camera_snr_alpha. Calibration applies it (readable), as do the
    robot, offline evaluation (profile_eval, bags) and reproduce's held-out figures; the
    protocol's 309-window figures read every camera (at most alpha fall below the floor).
    """
    if not cfg.calibration.camera_snr_alpha:
        return None
    rows = np.concatenate([splits.field_train, splits.field_cal])
    return camera_min_snr(ds.take('field_camera', rows),
                          ds.take('field_mask', rows)[:, MODALITIES.index('camera')],
                          cfg.calibration.camera_snr_alpha)


def readable(windows: Windows, min_snr: Optional[float]) -> np.ndarray:
    """
    Availability [n, M] that reads a camera below the floor as missing, as the robot does.

    The calibration sees windows as the robot will: the onboard rule, window.unreadable.
    """
    mask = np.ones((len(windows), len(MODALITIES)), dtype=bool)
    if min_snr is not None:
        camera = FIELD_SPEC.with_min_snr(min_snr).modality('camera')
        mask[:, MODALITIES.index('camera')] = ~unreadable(camera, windows.arrays['camera'])[0]
    return mask


class ExportError(RuntimeError):
    """An export that failed after training; the deployed model was left as it was."""


def export_student(cfg: TrainConfig, student, stats, calib, metrics, checkpoint: Path,
                   signing_key=None) -> Dict:
    """
    Export ONNX + metadata to cfg.export.out and copy the torch checkpoint beside it.

    With signing_key (an Ed25519 private key) the model and metadata are signed; without, the
    model is left unsigned and the log says how to sign it.
    """
    path = Path(cfg.export.out)
    # Everything is written and checked beside the deployed model first: a failed export
    # (parity, metadata, opset, a full disk) leaves the model it would replace as it was.
    staging = path.parent / f'.{path.name}.staging'
    shutil.rmtree(staging, ignore_errors=True)
    staged = staging / path.name
    try:
        try:
            worst, meta, signer = _stage(cfg, student, stats, calib, metrics, checkpoint,
                                         signing_key, staged)
        except (ParityError, OSError) as err:
            raise ExportError(f'export failed: {err}; {path} is unchanged. The trained student '
                              f'is saved: once the cause is fixed, export it with '
                              f'softmaint-train export --checkpoint {checkpoint}') from err
        for name in (staged.with_suffix('.pt'), staged, metadata_path(staged),
                     signature_path(staged)):
            _install(name, path.parent / name.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _log(f'exported {path} ({path.stat().st_size / 1e6:.2f} MB, sha256 {meta.sha256[:12]}, '
         f'parity max |diff| {worst:.2e}), '
         + (f'signed with key {signer}' if signer else
            f'UNSIGNED: robots refuse it until it is signed with softmaint-sign sign {path} '
            '--key PRIVATE.pem (docs/deployment.md)'))
    return {'path': str(path), 'sha256': meta.sha256, 'parity_max_abs_diff': worst,
            'bytes': path.stat().st_size, 'signed_by': signer}


def _stage(cfg: TrainConfig, student, stats, calib, metrics, checkpoint: Path, signing_key,
           staged: Path):
    """Write and check the export at `staged`; return (parity, metadata, signer)."""
    export_onnx(student, staged, cfg.export.opset)
    worst = check_parity(student, staged)
    flat = {f'test.{k}': v for k, v in metrics.items() if v == v}
    flat['parity_max_abs_diff'] = worst
    if 'windows' in calib:       # calibrations older than the count (kept by fine-tuning) lack it
        flat['calibration_windows'] = calib['windows']
    meta = write_metadata(staged, cfg.export.model_id, stats, cfg.student.members, calib, flat,
                          card_digest(cfg.data.root), asdict(cfg), _calibration_digest(cfg))
    shutil.copyfile(checkpoint, staged.with_suffix('.pt'))
    return worst, meta, sign_export(staged, signing_key)


def _install(staged: Path, target: Path) -> None:
    """Move a staged export file over its target; remove the target if nothing was staged."""
    if staged.is_file():
        os.replace(staged, target)
    else:                # an unsigned export: the old signature would call the new model altered
        target.unlink(missing_ok=True)


@dataclass
class AblationConfig:
    """Seeds x label fractions x variants; extra variants only at ablation_fraction."""

    base: str = 'default.yaml'
    seeds: Tuple[int, ...] = (0, 1, 2)
    label_fractions: Tuple[float, ...] = (0.01, 0.05, 1.0)
    variants: Dict[str, dict] = field(default_factory=dict)       # at every label fraction
    ablations: Dict[str, dict] = field(default_factory=dict)      # at ablation_fraction only
    ablation_fraction: float = 0.01
    overrides: Dict[str, object] = field(default_factory=dict)    # applied to every run
    teacher_seed: Optional[int] = None      # one teacher for every run; None = one per seed


_ABLATION_TYPES = {'base': (str,), 'seeds': (list,), 'label_fractions': (list,),
                   'variants': (dict,), 'ablations': (dict,), 'overrides': (dict,),
                   'ablation_fraction': (float, int), 'teacher_seed': (int, type(None))}


def load_ablation(path: Path, base: Optional[Path] = None) -> Tuple[AblationConfig, dict]:
    """
    Read an ablation YAML; return it and the base config mapping.

    The base is the file's `base` (a path beside it), or `base` if given, so one protocol can
    run on another recipe.
    """
    path = Path(path)
    data = read_yaml_mapping(path, 'ablation config')
    known = set(AblationConfig.__dataclass_fields__)
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f'{path}: {key}: unknown field; known: {sorted(known)}')
        if not isinstance(value, _ABLATION_TYPES.get(key, object)):
            raise ConfigError(f'{path}: {key}: expected a {_ABLATION_TYPES[key][0].__name__}, '
                              f'got {value!r}')
    abl = AblationConfig(**{k: (tuple(v) if k in ('seeds', 'label_fractions') else v)
                            for k, v in data.items()})
    return abl, read_mapping(Path(base) if base else path.parent / abl.base)


def ablation_runs(abl: AblationConfig, base: dict):
    """Yield (name, TrainConfig) of every run, validated before anything trains."""
    plan = []
    for seed in abl.seeds:
        for frac in abl.label_fractions:
            for name, over in abl.variants.items():
                plan.append((name, seed, frac, over))
        for name, over in abl.ablations.items():
            plan.append((name, seed, abl.ablation_fraction, over))
    for name, seed, frac, over in plan:
        data = json.loads(json.dumps(base))
        for dotted, value in {**abl.overrides, **(over or {})}.items():
            apply_override(data, dotted, value)
        apply_override(data, 'name', name)
        apply_override(data, 'seed', seed)
        apply_override(data, 'data.label_fraction', frac)
        try:
            cfg = config_from_dict(data)
        except ConfigError as err:
            raise ConfigError(f'ablation variant {name!r}: {err}') from None
        yield f'{name}-f{frac:g}-seed{seed}', cfg


def plan_ablation(path: Path, base: Optional[Path] = None):
    """Read an ablation config; return it and its (tag, TrainConfig) runs, all checked."""
    abl, base = load_ablation(path, base)
    runs = list(ablation_runs(abl, base))
    _check_shared_teachers(runs, abl.teacher_seed)
    return abl, runs


def ablate(path: Path, out_dir: Path, progress: bool = True,
           base: Optional[Path] = None) -> Path:
    """Run every ablation run not yet in out_dir/results.jsonl; return that file."""
    abl, runs = plan_ablation(path, base)
    out_dir = Path(out_dir)
    if is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / 'results.jsonl'
    done = from_main(_finished_runs, results)
    teachers = {}
    for i, (tag, cfg) in enumerate(runs):
        if tag in done:
            _check_recorded_run(results, tag, done[tag], cfg)
            continue
        _log(f'ablation run {i + 1}/{len(runs)}: {tag}')
        teacher_seed = cfg.seed if abl.teacher_seed is None else abl.teacher_seed
        if teacher_seed not in teachers:
            ds = open_dataset(cfg.data.root)
            splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
            torch.set_num_threads(cfg.threads)
            teachers = {teacher_seed: get_teacher(replace(cfg, seed=teacher_seed), ds, splits,
                                                  out_dir, progress)}
        record = run(cfg, out_dir, progress=progress, teacher_override=teachers[teacher_seed],
                     teacher_seed=teacher_seed)
        if record:
            with open(results, 'a') as stream:
                stream.write(json.dumps(record) + '\n')
    return results


def _teacher_inputs(cfg: TrainConfig) -> dict:
    """Return the config fields a teacher is trained from: its own, the data but its labels."""
    data = {k: v for k, v in asdict(cfg.data).items()
            if k not in ('label_fraction', 'calibration_root')}
    return flatten_config({'teacher': asdict(cfg.teacher), 'data': data})


def _check_shared_teachers(runs, teacher_seed: Optional[int]) -> None:
    """
    Raise ConfigError if runs that share a teacher differ in what it is trained from.

    An ablation trains one teacher per teacher seed and hands it to every run of that seed; a
    variant with another teacher or data config would be recorded with a teacher it never had.
    """
    first = {}
    for tag, cfg in runs:
        seed = cfg.seed if teacher_seed is None else teacher_seed
        inputs = _teacher_inputs(cfg)
        other_tag, other = first.setdefault(seed, (tag, inputs))
        changed = sorted(k for k in inputs if inputs[k] != other[k])
        if changed:
            raise ConfigError(f'ablation run {tag} changes {", ".join(changed)} but shares the '
                              f'teacher of seed {seed} with {other_tag}: an ablation trains one '
                              'teacher per seed; run this variant as an ablation of its own '
                              '(another --out)')


def _finished_runs(results: Path) -> Dict[str, dict]:
    """Tag -> record of every run already recorded in results.jsonl."""
    if not results.is_file():
        return {}
    done = {}
    for number, line in enumerate(results.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f'{results}, line {number}: not a complete record (a run cut off '
                            'while writing it?): delete that line and run again') from None
        done[f"{r['variant']}-f{r['label_fraction']:g}-seed{r['seed']}"] = r
    return done


def _check_recorded_run(results: Path, tag: str, record: dict, cfg: TrainConfig) -> None:
    """
    Raise DataError if a recorded run came from another dataset or config than this one.

    Records written before the config digest existed are checked on their dataset only.
    """
    differs = []
    if record.get('dataset_card_sha256', '') not in ('', card_digest(cfg.data.root)):
        differs.append('dataset')
    if record.get('config_sha256', '') not in ('', config_digest(cfg)):
        differs.append('config')
    if differs:
        raise DataError(f'{results}: run {tag} was recorded with another '
                        f'{" and ".join(differs)} than this one (changed since?): use another '
                        '--out, or move the old results aside')
