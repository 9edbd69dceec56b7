"""
Memory-mapped dataset -> torch batches: episode splits, label fractions, normalisation.

Rows of the dataset are windows; every window belongs to an episode, and all splits are by
episode so no episode leaks between train, calibration and test. The split depends only on
`data.split_seed`, so every training seed is evaluated on the same held-out field episodes:

    simulation episodes (domain 0)  -> teacher_train | teacher_val
    field episodes (domain 1)       -> field_train | field_cal | field_test

The teacher learns from teacher_train (teacher view, all labels). The student distils on the
field view of teacher_train + field_train, but sees labels only for `label_fraction` of the
field_train episodes (chosen by the run's seed). field_cal fits temperatures and conformal
thresholds, with every field window of `data.calibration_root` when one is given
(calibration_windows); field_test is only evaluated.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from softmaint_core import window
from softmaint_core.dataset import Dataset
from softmaint_core.spec import FIELD_SPEC, InputSpec, MODALITIES, ModalitySpec, TEACHER_SPEC
import torch

from .config import DataConfig

VIEW_SPECS = {'teacher': TEACHER_SPEC, 'field': FIELD_SPEC}
LABEL_NAMES = ('fatigue', 'damage', 'urgency', 'domain', 'lighting', 'episode')
MIN_STD = 1e-3
SIM_DOMAIN, FIELD_DOMAIN = 0, 1       # the dataset's `domain` column


class DataError(RuntimeError):
    """A dataset that cannot serve the protocol (e.g. no field-domain episodes)."""


@dataclass
class Splits:
    """Window indices of every split (global dataset rows)."""

    teacher_train: np.ndarray
    teacher_val: np.ndarray
    field_train: np.ndarray
    field_cal: np.ndarray
    field_test: np.ndarray

    def sizes(self) -> Dict[str, int]:
        """Return the number of windows per split."""
        return {k: int(len(v)) for k, v in self.__dict__.items()}


def _cut(episodes: np.ndarray, fractions: Sequence[float]):
    bounds = np.cumsum([int(round(f * len(episodes))) for f in fractions])
    return np.split(episodes, bounds)


def make_splits(episode: np.ndarray, domain: np.ndarray, cfg: DataConfig) -> Splits:
    """Split windows by episode with `cfg.split_seed` (see the module docstring)."""
    rng = np.random.default_rng(cfg.split_seed)
    sim = np.unique(episode[domain == SIM_DOMAIN])
    field = np.unique(episode[domain == FIELD_DOMAIN])
    if len(field) < 3:
        raise DataError(f'need >= 3 field-domain episodes (domain 1), found {len(field)}: '
                        'generate the dataset with softmaint-dataset generate --field-fraction '
                        'above 0 and enough --episodes')
    if len(sim) < 2:
        raise DataError(f'need >= 2 simulation episodes (domain 0), found {len(sim)}: generate '
                        'the dataset with --field-fraction below 1 and enough --episodes')
    rng.shuffle(sim)
    rng.shuffle(field)
    if cfg.max_windows and len(episode) > cfg.max_windows:
        keep = cfg.max_windows / len(episode)
        sim = sim[:max(2, int(round(keep * len(sim))))]
        field = field[:max(3, int(round(keep * len(field))))]
    sim_val, sim_train = _cut(sim, [cfg.teacher_val])
    if len(sim_val) == 0:
        sim_val, sim_train = sim[:1], sim[1:]
    f_train, f_cal, f_test = _cut(field, [cfg.field_train, cfg.field_cal])
    if min(len(f_train), len(f_cal), len(f_test)) == 0:
        f_train, f_cal, f_test = field[:-2], field[-2:-1], field[-1:]

    def rows(eps):
        return np.flatnonzero(np.isin(episode, eps))

    return Splits(rows(sim_train), rows(sim_val), rows(f_train), rows(f_cal), rows(f_test))


def labelled_rows(rows: np.ndarray, episode: np.ndarray, fraction: float,
                  seed: int) -> np.ndarray:
    """Rows of `fraction` of the episodes in `rows` (at least one episode), chosen by seed."""
    eps = np.unique(episode[rows])
    n = max(1, int(round(fraction * len(eps))))
    chosen = np.random.default_rng(10_000 + seed).choice(eps, size=n, replace=False)
    return rows[np.isin(episode[rows], chosen)]


class Windows:
    """One view's arrays for a set of rows, in memory (camera kept as uint8)."""

    def __init__(self, arrays: Dict[str, np.ndarray], spec: InputSpec):
        self.arrays = arrays
        self.spec = spec
        self.n = len(arrays['fatigue'])

    def __len__(self) -> int:
        return self.n

    @classmethod
    def load(cls, ds: Dataset, view: str, rows: np.ndarray, chunk: int = 512) -> 'Windows':
        """Gather `rows` of `view` from the memory-mapped dataset."""
        spec = VIEW_SPECS[view]
        rows = np.asarray(rows)
        arrays = {}
        for name in MODALITIES:
            parts = [ds.take(f'{view}_{name}', rows[i:i + chunk])
                     for i in range(0, len(rows), chunk)] or [ds.take(f'{view}_{name}', rows)]
            arrays[name] = np.concatenate(parts)
            expected = spec.modality(name).shape
            if arrays[name].shape[1:] != expected:
                raise DataError(f'{view}_{name} has window shape {arrays[name].shape[1:]}, '
                                f'the {view} spec expects {expected}: the dataset was made '
                                'by another simulator version; regenerate it '
                                '(softmaint-dataset generate)')
        for name in LABEL_NAMES + ('privileged',):
            arrays[name] = ds.take(name, rows)
        if view == 'field':
            arrays['mask'] = ds.take('field_mask', rows).astype(bool)
        else:  # the simulation gives the teacher every modality
            arrays['mask'] = np.ones((len(rows), len(MODALITIES)), dtype=bool)
        arrays['row'] = rows
        return cls(arrays, spec)

    def subset(self, index: np.ndarray) -> 'Windows':
        """Return a new Windows with the given positions (not dataset rows)."""
        return Windows({k: v[index] for k, v in self.arrays.items()}, self.spec)

    @staticmethod
    def concat(parts: Sequence['Windows']) -> 'Windows':
        """Return the windows of `parts` one after another (`row` then mixes datasets' rows)."""
        return Windows({k: np.concatenate([p.arrays[k] for p in parts]) for k in parts[0].arrays},
                       parts[0].spec)


def fit_normalisation(windows: Windows, chunk: int = 256) -> Dict[str, tuple]:
    """
    Per-channel (mean, std) of every modality over the windows where it is available.

    Camera stats are on [0, 1] values (uint8 / 255) per RGB channel, as the onboard ingestion
    feeds them; vector modalities per feature. NaN (a quantity the robot does not sense) is
    left out; a channel that is never sensed gets (0, 1).
    """
    stats = {}
    for i, name in enumerate(MODALITIES):
        data = windows.arrays[name]
        rows = np.flatnonzero(windows.arrays['mask'][:, i])
        channels = windows.spec.modality(name).channels
        if len(rows) == 0:
            stats[name] = ([0.0] * channels, [1.0] * channels)
            continue
        axes = tuple(a for a in range(data.ndim) if a != 2)
        total = np.zeros(channels)
        total_sq = np.zeros(channels)
        count = np.zeros(channels)
        for start in range(0, len(rows), chunk):
            x = data[rows[start:start + chunk]].astype(np.float64)
            if name == 'camera':
                x /= 255.0
            total += np.nansum(x, axis=axes)
            total_sq += np.nansum(x ** 2, axis=axes)
            count += np.isfinite(x).sum(axis=axes)
        sensed = count > 0
        mean = np.where(sensed, total / np.maximum(count, 1), 0.0)
        std = np.where(sensed, np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean ** 2,
                                                  0.0)), 1.0)
        stats[name] = (mean.tolist(), np.maximum(std, MIN_STD).tolist())
    return stats


@dataclass(frozen=True)
class DomainStats:
    """
    Input normalisation per domain: simulation windows with `simulation`, field with `field`.

    The field statistics come from unlabelled field-domain windows, so no field label is used.
    Normalising each domain with its own statistics removes the shift of the inputs' first two
    moments between the domains (darker frames, other sensor offsets), the part of a domain gap
    a network trained on one domain reads as signal (AdaBN: Li et al., "Revisiting batch
    normalization for practical domain adaptation", ICLR workshop 2017).
    """

    simulation: Dict[str, tuple]
    field: Dict[str, tuple]

    def of(self, domain: int) -> Dict[str, tuple]:
        """Statistics of domain 0 (simulation) or 1 (field)."""
        return self.field if domain == FIELD_DOMAIN else self.simulation


def onboard_stats(stats: Union[Dict[str, tuple], DomainStats]) -> Dict[str, tuple]:
    """Return the statistics the robot normalises its windows with: the field domain's."""
    return stats.of(FIELD_DOMAIN) if isinstance(stats, DomainStats) else stats


def fit_domain_stats(windows: Windows) -> DomainStats:
    """Each domain's statistics over its own windows (fit_normalisation; labels unused)."""
    domain = windows.arrays['domain']
    return DomainStats(*(fit_normalisation(windows.subset(np.flatnonzero(domain == d)))
                         for d in (SIM_DOMAIN, FIELD_DOMAIN)))


def normalise(name: str, x: np.ndarray, stats: Dict[str, tuple],
              lighting: float = 1.0) -> np.ndarray:
    """Normalise one modality's raw array [B, T, ...] with its (mean, std) from `stats`."""
    mean, std = stats[name]
    modality = ModalitySpec(name, x.shape[1], tuple(x.shape[2:]), 1.0, tuple(mean), tuple(std))
    return window.normalise(modality, x, lighting)


def _normalised(windows: Windows, name: str, index: np.ndarray, stats, lighting: float):
    """One modality at positions `index`, each row normalised by its domain's statistics."""
    raw = windows.arrays[name][index]
    if not isinstance(stats, DomainStats):
        return normalise(name, raw, stats, lighting)
    domain = windows.arrays['domain'][index]
    x = np.empty(raw.shape, np.float32)
    for d in np.unique(domain):
        rows = domain == d
        x[rows] = normalise(name, raw[rows], stats.of(d), lighting)
    return x


def make_inputs(windows: Windows, index: np.ndarray, stats: Union[Dict[str, tuple], DomainStats],
                mask: Optional[np.ndarray] = None, lighting: float = 1.0):
    """
    Model inputs for positions `index`: (dict of float tensors, mask tensor [B, M]).

    `stats` normalises every row, or, as DomainStats, each row by its domain's statistics.

    Unavailable modalities are zeros (as the onboard ingestion feeds them); `mask` overrides
    the data's availability (it is AND-ed with it).
    """
    avail = windows.arrays['mask'][index]
    if mask is not None:
        avail = avail & np.broadcast_to(np.asarray(mask, dtype=bool), avail.shape)
    inputs = {}
    for i, name in enumerate(MODALITIES):
        x = _normalised(windows, name, index, stats, lighting)
        x[~avail[:, i]] = 0.0
        inputs[name] = torch.from_numpy(np.ascontiguousarray(x))
    return inputs, torch.from_numpy(avail.astype(np.float32))


def make_targets(windows: Windows, index: np.ndarray) -> Dict[str, torch.Tensor]:
    """Label tensors for positions `index`."""
    a = windows.arrays
    return {'fatigue': torch.from_numpy(a['fatigue'][index].astype(np.int64)),
            'damage': torch.from_numpy(a['damage'][index].astype(np.int64)),
            'urgency': torch.from_numpy(a['urgency'][index].astype(np.float32))}


def lighting_edges(lighting: np.ndarray, bins: int = 3) -> np.ndarray:
    """Inner quantile edges that split the training lighting into `bins` equal-count bins."""
    return np.quantile(lighting, np.linspace(0, 1, bins + 1)[1:-1])


def lighting_bins(lighting: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of every window's lighting factor."""
    return np.digitize(lighting, edges).astype(np.int64)


def privileged_stats(privileged: np.ndarray, transform: str):
    """
    Per-column (scale, mean, std) of the privileged regression targets (see privileged_targets).

    scale is the column's median magnitude; mean and std are those of the transformed values.
    """
    scale = np.maximum(np.median(np.abs(privileged), axis=0), MIN_STD)
    values = _privileged_transform(privileged, scale, transform)
    std = np.maximum(values.std(axis=0), MIN_STD)
    return scale.astype(np.float32), values.mean(axis=0).astype(np.float32), std.astype(np.float32)


def _privileged_transform(x: np.ndarray, scale: np.ndarray, transform: str) -> np.ndarray:
    if transform == 'raw':
        return x
    return np.sign(x) * np.log1p(np.abs(x) / scale)


def privileged_targets(privileged: np.ndarray, stats, transform: str) -> np.ndarray:
    """
    Standardised privileged state: (f(x) - mean) / std.

    f is the identity ('raw') or the signed log f(x) = sign(x) log(1 + |x| / scale). Several
    physics columns (RUL, cycles, rates) span orders of magnitude; standardised raw, a few
    windows dominate the loss. The log keeps their order and tames the tails.
    """
    scale, mean, std = stats
    return ((_privileged_transform(privileged, scale, transform) - mean) / std).astype(np.float32)


# What must match for windows of two datasets to be exchangeable: same generator, same views,
# same simulated physics, sensor noise and faults (the profile changes all of them).
SAME_DOMAIN = ('generator_version', 'physics', 'views')


def generator_seed(card: dict):
    """Seed a dataset was generated with: episode i of two datasets of one seed is the same."""
    return card.get('parameters', {}).get('seed', card.get('seed'))


def calibration_source(ds: Dataset, cfg: DataConfig) -> Optional[Tuple[Dataset, np.ndarray]]:
    """
    Return the dataset of cfg.calibration_root and its field-domain rows, checked (or None).

    Raises DataError when it was generated with the training data's seed (its episodes would
    be the training data's, test split included), is of another generator, physics or views
    (its windows would not be exchangeable with the robot's) or has no field window. Called
    before training, so a wrong dataset costs nothing.
    """
    if not cfg.calibration_root:
        return None
    extra = open_dataset(cfg.calibration_root)
    if generator_seed(extra.card) == generator_seed(ds.card):
        raise DataError(f'data.calibration_root {cfg.calibration_root} was generated with the '
                        f'seed of {cfg.root}, so its episodes are those of the training data '
                        '(test split included); generate it with another seed')
    differ = [key for key in SAME_DOMAIN if extra.card.get(key) != ds.card.get(key)]
    if differ:
        raise DataError(f'data.calibration_root {cfg.calibration_root}: its {", ".join(differ)} '
                        f'differ from {cfg.root}; generate it with the same generator and '
                        'profile (softmaint-dataset generate --field-fraction 1.0 --profile '
                        f"{ds.card.get('parameters', {}).get('profile', 'default')})")
    rows = np.flatnonzero(extra.array('domain') == FIELD_DOMAIN)
    if not len(rows):
        raise DataError(f'data.calibration_root {cfg.calibration_root} has no field-domain '
                        'window; generate it with --field-fraction 1.0')
    return extra, rows


def calibration_windows(ds: Dataset, splits: Splits,
                        source: Optional[Tuple[Dataset, np.ndarray]]) -> Windows:
    """
    Return the labelled field windows that fit temperatures and conformal thresholds.

    field_cal, and the rows of `source`: what calibration_source returned before training.
    """
    cal = Windows.load(ds, 'field', splits.field_cal)
    if source is None:
        return cal
    return Windows.concat([cal, Windows.load(source[0], 'field', source[1])])


def open_dataset(root) -> Dataset:
    """Open a dataset and check it has both views and the labels the protocol needs."""
    ds = Dataset(root)
    needed = [f'{v}_{m}' for v in VIEW_SPECS for m in MODALITIES]
    needed += list(LABEL_NAMES) + ['privileged', 'field_mask']
    missing = sorted(set(needed) - set(ds.names))
    if missing:
        raise DataError(f'{root} lacks arrays {missing}: not a complete softmaint dataset; '
                        'generate one with softmaint-dataset generate (or finish an '
                        'interrupted one by rerunning its command)')
    return ds
