"""
Observability probe: how well the labels can be learnt from privileged state vs sensors.

Two small classifiers are trained on the same episodes and tested on the same held-out ones:

    privileged  MLP over the privileged physics columns (signed log, standardised on train)
    sensors     a small network over every modality of a view (`view`: the teacher's, or the
                field robot's with its sensor dropouts): a per-frame CNN on the camera
                (frames strided and average-pooled), pooled over time (mean and max), and a
                dilated 1-D temporal conv over each vector modality (standardised per channel
                on train), pooled the same way; concatenated into an MLP head

Both predict damage, fatigue and urgency (a multi-task head; urgency in [0, 1] through a
sigmoid, least squares). The split is by episode, stratified by damage, seeded by `split_seed`
only, so every training seed and both probes see the same test episodes. A large gap between
the two damage F1s means the sensors do not carry (or the probe cannot find) what the physics
state determines. Each probe's point estimate (most probable classes, predicted urgency) also
gives the maintenance level it implies (softmaint_core.decisions.ground_truth_action with the
default thresholds): its `decision_accuracy` against the level the true labels imply bounds
what a policy reading these sensors can reach. Shapes are read from the data.
"""
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from softmaint_core.dataset import Dataset
from softmaint_core.decisions import ground_truth_action
from softmaint_core.metrics import confusion_matrix, macro_f1, per_class_f1
from softmaint_core.settings import Thresholds
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
import torch
from torch import nn
from tqdm import tqdm

from .data import FIELD_DOMAIN, MIN_STD
from .losses import get_loss
from .probe_models import CAMERA, PrivilegedProbe, SensorProbe
from .train import cosine_lr

NOT_SENSORS = ('mask',)     # field_mask: which modalities a window has, not a sensor
LABELS = ('damage', 'fatigue', 'domain', 'episode')
URGENCY = 'urgency'          # the regressed label (float; LABELS are integers)
PROBES = ('privileged', 'sensors')
LOAD_CHUNK = 256
EVAL_CHUNK = 256


class ObservabilityError(RuntimeError):
    """The probe cannot run (missing arrays, too few episodes, a non-finite loss)."""


@dataclass
class ProbeConfig:
    """Everything that decides a probe run."""

    seeds: Sequence[int] = (0, 1, 2)
    epochs: int = 40                 # sensor probe
    privileged_epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    test_fraction: float = 0.2
    split_seed: int = 0
    max_episodes: Optional[int] = None
    frame_stride: int = 2            # use every n-th camera frame
    frame_pool: int = 2              # average-pool camera frames n x n
    threads: int = 2
    shuffle_labels: bool = False     # control: permute the training labels
    view: str = 'teacher'            # whose sensors: the teacher's, or the field robot's
    modalities: Sequence[str] = ()   # the view's modalities the sensor probe reads (() = all)
    progress: bool = True


@dataclass
class ProbeData:
    """In-memory inputs and labels of the selected rows (camera as pooled uint8)."""

    privileged: np.ndarray
    series: Dict[str, np.ndarray]
    camera: Optional[np.ndarray]
    labels: Dict[str, np.ndarray]
    card: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels['damage'])


# ----------------------------------------------------------------------------- data

def view_arrays(ds: Dataset, view: str, only: Sequence[str] = ()) -> Tuple[List[str], bool]:
    """
    Vector modalities of a view (names without prefix) and whether it has a camera.

    `only`: read just these modalities (all of the view's when empty).
    """
    prefix = f'{view}_'
    names = [n[len(prefix):] for n in ds.names
             if n.startswith(prefix) and n[len(prefix):] not in NOT_SENSORS]
    missing = sorted(set(LABELS + (URGENCY, 'privileged')) - set(ds.names))
    if missing or not names:
        raise ObservabilityError(f'{ds.root} lacks arrays {missing or [prefix + "*"]}')
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ObservabilityError(f'the {view} view has no modality {unknown}; it has '
                                 f'{sorted(names)}')
    names = [n for n in names if not only or n in only]
    return sorted(n for n in names if n != CAMERA), CAMERA in names


def select_episodes(episode: np.ndarray, max_episodes: Optional[int], seed: int) -> np.ndarray:
    """Rows of all episodes, or of a seeded random subset of `max_episodes` of them."""
    unique = np.unique(episode)
    if max_episodes and max_episodes < len(unique):
        unique = np.random.default_rng([seed, 1]).choice(unique, max_episodes, replace=False)
    return np.flatnonzero(np.isin(episode, unique))


def downsample_frames(frames: np.ndarray, stride: int, pool: int) -> np.ndarray:
    """Every `stride`-th frame of [n, T, C, H, W], average-pooled `pool` x `pool` (uint8)."""
    x = frames[:, ::max(1, stride)]
    if pool > 1 and min(x.shape[-2:]) >= pool:
        h, w = (s // pool for s in x.shape[-2:])
        x = x[..., :h * pool, :w * pool].reshape(x.shape[:-2] + (h, pool, w, pool))
        x = x.mean(axis=(-3, -1), dtype=np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _load_camera(ds: Dataset, rows: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    chunks = range(0, len(rows), LOAD_CHUNK)
    parts = [downsample_frames(ds.take(f'{cfg.view}_{CAMERA}', rows[i:i + LOAD_CHUNK]),
                               cfg.frame_stride, cfg.frame_pool)
             for i in tqdm(chunks, desc='load camera', disable=not cfg.progress,
                           dynamic_ncols=True)]
    return np.concatenate(parts)


def load_probe_data(root, cfg: ProbeConfig) -> ProbeData:
    """Read the selected episodes' view, privileged state and labels into memory."""
    ds = Dataset(root)
    series_names, has_camera = view_arrays(ds, cfg.view, cfg.modalities)
    rows = select_episodes(ds.array('episode'), cfg.max_episodes, cfg.split_seed)
    labels = {name: ds.take(name, rows).astype(np.int64) for name in LABELS}
    labels[URGENCY] = ds.take(URGENCY, rows).astype(np.float32)
    series = {name: ds.take(f'{cfg.view}_{name}', rows).astype(np.float32)
              for name in series_names}
    series = {name: x.reshape(len(rows), x.shape[1], -1) for name, x in series.items()}
    camera = _load_camera(ds, rows, cfg) if has_camera else None
    privileged = ds.take('privileged', rows).astype(np.float32).reshape(len(rows), -1)
    return ProbeData(privileged, series, camera, labels, ds.card)


def split_episodes(episode: np.ndarray, damage: np.ndarray, test_fraction: float,
                   seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """
    Train and test rows, split by episode and stratified by the episode's damage class.

    Each class puts round(test_fraction * its episodes) into the test set (at least one of a
    class with two or more episodes); the split depends on `seed` only.
    """
    unique, first = np.unique(episode, return_index=True)
    rng = np.random.default_rng([seed, 2])
    test = []
    for cls in np.unique(damage[first]):
        eps = rng.permutation(unique[damage[first] == cls])
        n = int(round(test_fraction * len(eps)))
        test.append(eps[:max(n, 1 if len(eps) > 1 else 0)])
    is_test = np.isin(episode, np.concatenate(test))
    if is_test.all() or not is_test.any():
        raise ObservabilityError(f'cannot split {len(unique)} episodes into train and test '
                                 f'with test fraction {test_fraction}')
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def series_stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) of [n, T, D] over rows and steps, NaN left out."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    sensed = np.isfinite(flat).any(axis=0)
    with np.errstate(invalid='ignore'):
        mean = np.where(sensed, np.nanmean(np.where(sensed, flat, 0.0), axis=0), 0.0)
        std = np.where(sensed, np.nanstd(np.where(sensed, flat, 1.0), axis=0), 1.0)
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)


def standardise(x: np.ndarray, stats: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(x - mean) / std with non-finite values (unsensed quantities) set to 0."""
    out = ((x - stats[0]) / stats[1]).astype(np.float32)
    out[~np.isfinite(out)] = 0.0
    return out


def log_scales(x: np.ndarray) -> np.ndarray:
    """Per-column scale of the signed log: the 5th percentile of the non-zero magnitudes."""
    scales = np.ones(x.shape[1], dtype=np.float64)
    for j in range(x.shape[1]):
        nonzero = np.abs(x[:, j][x[:, j] != 0])
        if len(nonzero):
            scales[j] = max(np.percentile(nonzero, 5), 1e-12)
    return scales


def privileged_features(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """
    Privileged columns as sign(x) log(1 + |x| / scale), standardised with train-only stats.

    RUL (capped at 1e6), cycle counts and rates span orders of magnitude; the signed log keeps
    their order and gives every decade about the same room. The scale is a low percentile of
    the column's non-zero magnitudes (not the median), so that small values of a wide column are
    not squashed into the log's linear part. Non-finite values read as 0.
    """
    x = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    logged = np.sign(x) * np.log1p(np.abs(x) / log_scales(x[train]))
    mean, std = logged[train].mean(axis=0), np.maximum(logged[train].std(axis=0), MIN_STD)
    return np.clip((logged - mean) / std, -10.0, 10.0).astype(np.float32)


def camera_stats(camera: np.ndarray, train: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-RGB-channel (mean, std) of train frames scaled to [0, 1]."""
    total, total_sq, count = 0.0, 0.0, 0
    for i in range(0, len(train), LOAD_CHUNK):
        x = camera[train[i:i + LOAD_CHUNK]].astype(np.float64) / 255.0
        total = total + x.sum(axis=(0, 1, 3, 4))
        total_sq = total_sq + (x ** 2).sum(axis=(0, 1, 3, 4))
        count += x.size // x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)


def sensor_inputs(data: ProbeData, train: np.ndarray):
    """Sensor tensors (vectors standardised on train, camera uint8) and the camera stats."""
    inputs = {name: torch.from_numpy(standardise(x, series_stats(x[train])))
              for name, x in data.series.items()}
    stats = None
    if data.camera is not None:
        inputs[CAMERA] = torch.from_numpy(data.camera)
        stats = camera_stats(data.camera, train)
    return inputs, stats


# ----------------------------------------------------------------------------- training

def _batch(inputs: Dict[str, torch.Tensor], index: np.ndarray) -> Dict[str, torch.Tensor]:
    idx = torch.from_numpy(index)
    return {k: v.index_select(0, idx) for k, v in inputs.items()}


def check_finite(loss: torch.Tensor, desc: str, epoch: int, step: int) -> None:
    """Raise ObservabilityError naming the probe and step when the loss is NaN or inf."""
    if not torch.isfinite(loss):
        raise ObservabilityError(
            f'{desc}: non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, step '
            f'{step}; check the inputs for NaN/inf or lower the learning rate')


def train_probe(model: nn.Module, inputs: Dict[str, torch.Tensor],
                targets: Dict[str, torch.Tensor], train: np.ndarray, epochs: int,
                cfg: ProbeConfig, seed: int, desc: str) -> nn.Module:
    """Adam with cosine decay on the heads' summed losses (cross-entropy; urgency: MSE)."""
    rng = np.random.default_rng([seed, 3])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    bar = tqdm(total=epochs * per_epoch, desc=desc, disable=not cfg.progress,
               dynamic_ncols=True)
    model.train()
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(train)
        for start in range(0, len(order), cfg.batch_size):
            index = np.sort(order[start:start + cfg.batch_size])
            out = model(_batch(inputs, index))
            loss = sum(head_loss(k, out[k], t[index]) for k, t in targets.items())
            check_finite(loss, desc, epoch, step)
            for group in opt.param_groups:
                group['lr'] = cosine_lr(step, epochs * per_epoch, cfg.lr, warmup=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
        bar.set_postfix(loss=f'{loss.item():.3f}')
    bar.close()
    return model.eval()


def head_loss(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a class head; least squares of the sigmoid of the urgency head."""
    if name == URGENCY:
        return get_loss('urgency_mse')(torch.sigmoid(output[:, 0]), target)
    return get_loss('cross_entropy')(output, target)


@torch.no_grad()
def predict(model: nn.Module, inputs: Dict[str, torch.Tensor],
            rows: np.ndarray) -> Dict[str, np.ndarray]:
    """Arg-max class of every class head, and the urgency, for `rows`."""
    model.eval()
    parts = [model(_batch(inputs, rows[i:i + EVAL_CHUNK]))
             for i in range(0, len(rows), EVAL_CHUNK)]
    out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return {k: (torch.sigmoid(v[:, 0]) if k == URGENCY else v.argmax(-1)).numpy()
            for k, v in out.items()}


# ----------------------------------------------------------------------------- metrics

def chance_f1(test_labels: np.ndarray, train_labels: np.ndarray, classes: int) -> float:
    """
    Return the expected damage macro-F1 of guessing with the train class frequencies.

    For test prevalence p and guess rate q of a class, F1 = 2pq / (p + q); the mean over the
    classes present in the test set (1 / classes when both are balanced).
    """
    p = np.bincount(test_labels, minlength=classes) / len(test_labels)
    q = np.bincount(train_labels, minlength=classes) / len(train_labels)
    present = p > 0
    return float(np.mean(2 * p[present] * q[present] / np.maximum(p + q, 1e-12)[present]))


def implied_levels(values: Dict[str, np.ndarray]) -> np.ndarray:
    """Maintenance level (settings.Action value) that fatigue, damage and urgency imply."""
    t = Thresholds()
    return np.array([ground_truth_action(FATIGUE_LEVELS[f], DAMAGE_TYPES[d], float(u), t)
                     for f, d, u in zip(values['fatigue'], values['damage'], values[URGENCY])])


def probe_metrics(labels: Dict[str, np.ndarray], preds: Dict[str, np.ndarray],
                  classes: Dict[str, int]) -> dict:
    """
    Score a probe's predictions on the test rows.

    Damage macro-F1 (all and field-domain), per-class F1, confusion; fatigue macro-F1; urgency
    MAE and the point estimate's decision accuracy (all and field-domain).
    """
    k = classes['damage']
    cm = confusion_matrix(labels['damage'], preds['damage'], k)
    field_rows = labels['domain'] == FIELD_DOMAIN
    field_f1 = (macro_f1(labels['damage'][field_rows], preds['damage'][field_rows], k)
                if field_rows.any() else None)
    right = implied_levels(preds) == implied_levels(labels)
    return {'damage_f1': macro_f1(labels['damage'], preds['damage'], k),
            'damage_f1_field': field_f1,
            'damage_f1_per_class': per_class_f1(cm),
            'confusion': cm.tolist(),
            'fatigue_f1': macro_f1(labels['fatigue'], preds['fatigue'], classes['fatigue']),
            'urgency_mae': float(np.abs(preds[URGENCY] - labels[URGENCY]).mean()),
            'decision_accuracy': float(right.mean()),
            'decision_accuracy_field': float(right[field_rows].mean()) if field_rows.any()
            else None}


# ----------------------------------------------------------------------------- the run

def class_counts(labels: Dict[str, np.ndarray]) -> Dict[str, int]:
    """Return the class count of each head: the taxonomy's, or more if the labels need it."""
    return {'damage': max(len(DAMAGE_TYPES), int(labels['damage'].max()) + 1),
            'fatigue': max(len(FATIGUE_LEVELS), int(labels['fatigue'].max()) + 1)}


def training_targets(labels: Dict[str, np.ndarray], train: np.ndarray, shuffle: bool,
                     seed: int) -> Dict[str, torch.Tensor]:
    """Every head's targets; with `shuffle`, permuted among the train rows (a control)."""
    targets = {}
    for name in ('damage', 'fatigue', URGENCY):
        y = labels[name].copy()
        if shuffle:
            y[train] = y[np.random.default_rng([seed, 4]).permutation(train)]
        targets[name] = torch.from_numpy(y)
    return targets


def build_probe(name: str, data: ProbeData, inputs, camera_stats, classes) -> nn.Module:
    """Fresh privileged or sensor probe for the data's shapes (one urgency output)."""
    outputs = {**classes, URGENCY: 1}
    if name == 'privileged':
        return PrivilegedProbe(inputs['privileged'].shape[1], outputs)
    series = {k: int(v.shape[-1]) for k, v in inputs.items() if k != CAMERA}
    channels = int(data.camera.shape[2]) if data.camera is not None else None
    return SensorProbe(series, channels, camera_stats, outputs)


def run_seed(data: ProbeData, inputs: dict, camera_stats, split, classes, cfg: ProbeConfig,
             seed: int) -> Dict[str, dict]:
    """Train and test both probes with one seed; metrics and seconds per probe."""
    train, test = split
    targets = training_targets(data.labels, train, cfg.shuffle_labels, seed)
    test_labels = {k: v[test] for k, v in data.labels.items()}
    results = {}
    for name in PROBES:
        start = time.monotonic()
        torch.manual_seed(seed)
        model = build_probe(name, data, inputs[name], camera_stats, classes)
        epochs = cfg.privileged_epochs if name == 'privileged' else cfg.epochs
        train_probe(model, inputs[name], targets, train, epochs, cfg, seed,
                    f'{name} seed {seed}')
        results[name] = probe_metrics(test_labels, predict(model, inputs[name], test), classes)
        results[name]['seconds'] = time.monotonic() - start
    return results


def run(root, cfg: ProbeConfig) -> dict:
    """Load the dataset, train both probes for every seed and return the summary."""
    start = time.monotonic()
    torch.set_num_threads(cfg.threads)
    data = load_probe_data(root, cfg)
    split = split_episodes(data.labels['episode'], data.labels['damage'], cfg.test_fraction,
                           cfg.split_seed)
    sensors, camera_stats = sensor_inputs(data, split[0])
    privileged = torch.from_numpy(privileged_features(data.privileged, split[0]))
    inputs = {'privileged': {'privileged': privileged}, 'sensors': sensors}
    classes = class_counts(data.labels)
    per_seed = [run_seed(data, inputs, camera_stats, split, classes, cfg, seed)
                for seed in cfg.seeds]
    summary = summarise(per_seed, data, split, classes, cfg)
    summary.update(data=str(root), wall_seconds=time.monotonic() - start)
    return summary


# ----------------------------------------------------------------------------- summary

def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def probe_summary(name: str, per_seed: List[Dict[str, dict]], class_names) -> dict:
    """Flat summary keys of one probe: means over seeds, per-seed values, confusion."""
    runs = [r[name] for r in per_seed]
    per_class = [_mean([r['damage_f1_per_class'][c] for r in runs])
                 for c in range(len(class_names))]
    f1 = [r['damage_f1'] for r in runs]
    return {
        f'{name}_damage_f1': _mean(f1),
        f'{name}_damage_f1_std': float(np.std(f1)),
        f'{name}_damage_f1_per_seed': f1,
        f'{name}_damage_f1_field': _mean([r['damage_f1_field'] for r in runs]),
        f'{name}_damage_f1_field_per_seed': [r['damage_f1_field'] for r in runs],
        f'{name}_damage_f1_per_class': dict(zip(class_names, per_class)),
        f'{name}_fatigue_f1': _mean([r['fatigue_f1'] for r in runs]),
        f'{name}_fatigue_f1_per_seed': [r['fatigue_f1'] for r in runs],
        **{f'{name}_{key}': _mean([r[key] for r in runs])
           for key in ('urgency_mae', 'decision_accuracy', 'decision_accuracy_field')},
        f'{name}_confusion': np.sum([r['confusion'] for r in runs], axis=0).tolist(),
        f'{name}_confusion_per_seed': [r['confusion'] for r in runs],
        f'{name}_seconds_per_seed': [r['seconds'] for r in runs],
    }


def _names(base: Sequence[str], classes: int) -> List[str]:
    return list(base) + [f'class_{i}' for i in range(len(base), classes)]


def summarise(per_seed, data: ProbeData, split, classes, cfg: ProbeConfig) -> dict:
    """Summary of a run: split sizes, dataset card fields, settings and both probes."""
    train, test = split
    episode, damage = data.labels['episode'], data.labels['damage']
    field_test = np.unique(episode[test][data.labels['domain'][test] == FIELD_DOMAIN])
    damage_names = _names(DAMAGE_TYPES, classes['damage'])
    summary = {
        'generator': data.card.get('generator'),
        'generator_version': data.card.get('generator_version'),
        'episodes': int(len(np.unique(episode))),
        'train_episodes': int(len(np.unique(episode[train]))),
        'test_episodes': int(len(np.unique(episode[test]))),
        'test_windows': int(len(test)),
        'field_test_episodes': int(len(field_test)),
        'split': {'seed': cfg.split_seed, 'test_fraction': cfg.test_fraction,
                  'stratified_by': 'damage', 'by': 'episode'},
        'seeds': list(cfg.seeds), 'view': cfg.view, 'modalities': list(cfg.modalities),
        'epochs': {'privileged': cfg.privileged_epochs, 'sensors': cfg.epochs},
        'shuffle_labels': cfg.shuffle_labels,
        'inputs': {'privileged': list(data.privileged.shape[1:]),
                   **{k: list(v.shape[1:]) for k, v in data.series.items()},
                   **({CAMERA: list(data.camera.shape[1:])} if data.camera is not None
                      else {})},
        'damage_classes': damage_names,
        'fatigue_classes': _names(FATIGUE_LEVELS, classes['fatigue']),
        'chance_damage_f1': chance_f1(damage[test], damage[train], classes['damage']),
    }
    for name in PROBES:
        summary.update(probe_summary(name, per_seed, damage_names))
    return summary


def _fmt(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.3f}'


def summary_markdown(s: dict) -> str:
    """Short Markdown report: both probes' F1s and per-class damage F1."""
    lines = [
        '# Observability probe', '',
        f"Data `{s['data']}` (generator {s['generator']} {s['generator_version']}); "
        f"{s['test_episodes']} held-out test episodes ({s['field_test_episodes']} field), "
        f"{s['train_episodes']} train; seeds {s['seeds']}; epochs {s['epochs']}"
        + ('; **training labels shuffled (control)**' if s['shuffle_labels'] else '')
        + (f"; the sensor probe reads only {', '.join(s['modalities'])}"
           if s.get('modalities') else '') + '.',
        '', f"Command: `{s.get('command', '')}`", '',
        '| probe | damage F1 (mean ± std) | per seed | field damage F1 | fatigue F1 | urgency MAE '
        '| decision accuracy (field) |', '|---|---|---|---|---|---|---|']
    for p in PROBES:
        seeds = ' / '.join(_fmt(v) for v in s[f'{p}_damage_f1_per_seed'])
        lines.append(f"| {p} | {_fmt(s[f'{p}_damage_f1'])} ± {s[f'{p}_damage_f1_std']:.3f} | "
                     f"{seeds} | {_fmt(s[f'{p}_damage_f1_field'])} | "
                     f"{_fmt(s[f'{p}_fatigue_f1'])} | {_fmt(s.get(f'{p}_urgency_mae'))} | "
                     f"{_fmt(s.get(f'{p}_decision_accuracy'))} "
                     f"({_fmt(s.get(f'{p}_decision_accuracy_field'))}) |")
    lines += ['', 'Chance damage F1 (guessing with train frequencies): '
              f"{s['chance_damage_f1']:.3f}.", '',
              '| damage class | ' + ' | '.join(PROBES) + ' |', '|---|' + '---|' * len(PROBES)]
    for c in s['damage_classes']:
        cells = [_fmt(s[f'{p}_damage_f1_per_class'][c]) for p in PROBES]
        lines.append(f'| {c} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Confusion matrices (summed over seeds): `confusion.png`.', '']
    return '\n'.join(lines)


def plot_confusion(s: dict, out: Path) -> None:
    """Both probes' damage confusion matrices (summed over seeds), row-normalised colours."""
    from .evaluate import draw_confusion, plt     # matplotlib set up headless there
    fig, axes = plt.subplots(1, len(PROBES), figsize=(5 * len(PROBES), 4.4))
    for ax, probe in zip(axes, PROBES):
        draw_confusion(ax, np.asarray(s[f'{probe}_confusion']), s['damage_classes'],
                       f"{probe}: damage F1 {_fmt(s[f'{probe}_damage_f1'])}")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def write_outputs(summary: dict, out_dir: Path) -> Path:
    """Write summary.json, summary.md and confusion.png into `out_dir`; return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    (out_dir / 'summary.md').write_text(summary_markdown(summary))
    plot_confusion(summary, out_dir / 'confusion.png')
    return out_dir
