"""
On-disk layout of simulated datasets, shared by the generator and the offline tool.

    <root>/card.json                 dataset card: generator version, parameters, counts
    <root>/shards/shard-00000/*.npy  one .npy per array, first axis = episode

A shard directory is written under a temporary name and renamed when complete, so a crashed or
interrupted generator never leaves a half-written shard under a final name, and a resumed run
regenerates exactly the shards that are missing. Arrays are memory-mapped for training.

Array names: '<view>_<modality>' for sensor data (views 'teacher' and 'field', modalities from
spec.MODALITIES; camera as uint8 [n, steps, 3, H, W], the rest float32 [n, steps, D]) and the
labels below.
"""
import hashlib
import json
import os
from pathlib import Path
import shutil
from typing import Dict, Iterable, List

import numpy as np

CARD = 'card.json'
# How a dataset was generated, not what it holds: a regenerated or merged copy differs only in
# these
RUN_FIELDS = ('generation_seconds', 'workers', 'merged_from')
SHARDS = 'shards'
VIEWS = ('teacher', 'field')
LABELS = {
    'fatigue': np.int64,        # index into taxonomy.FATIGUE_LEVELS
    'damage': np.int64,         # index into taxonomy.DAMAGE_TYPES
    'urgency': np.float32,      # [0, 1]
    'privileged': np.float32,   # [n, P] physics state only the teacher may use as a target
    'domain': np.int64,         # 0 = simulation (source), 1 = field (shifted physics)
    'lighting': np.float32,     # light intensity factor of the episode (1 = nominal)
    'episode': np.int64,        # global episode index (seeded, unique in the dataset)
    'field_mask': np.bool_,     # [n, M] modality availability in the field view
}


class DatasetError(RuntimeError):
    """A dataset directory that is missing, incomplete or inconsistent."""


def card_digest(root: Path) -> str:
    """
    Identity of a dataset: SHA-256 of its card without RUN_FIELDS ('' without a card).

    The generator is deterministic, so regenerating a dataset with its card's parameters on any
    machine, with any number of workers, gives the same digest, which model cards pin.
    """
    path = Path(root) / CARD
    if not path.is_file():
        return ''
    card = {k: v for k, v in json.loads(path.read_text()).items() if k not in RUN_FIELDS}
    return hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()


def shard_name(index: int) -> str:
    """Directory name of shard `index`."""
    return f'shard-{index:05d}'


def write_shard(root: Path, index: int, arrays: Dict[str, np.ndarray]) -> Path:
    """Write one shard atomically; all arrays must have the same first dimension."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f'shard {index}: arrays differ in length: {lengths}')
    shards = Path(root) / SHARDS
    shards.mkdir(parents=True, exist_ok=True)
    final = shards / shard_name(index)
    tmp = shards / f'.tmp-{shard_name(index)}-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, array in arrays.items():
        np.save(tmp / f'{name}.npy', np.ascontiguousarray(array))
    if final.exists():  # another worker finished the same shard first: keep its copy
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, final)
    return final


def completed_shards(root: Path) -> List[int]:
    """Return the indices of the shards that were written completely."""
    shards = Path(root) / SHARDS
    if not shards.is_dir():
        return []
    return sorted(int(p.name.split('-')[1]) for p in shards.glob('shard-*') if p.is_dir())


def remove_partial_shards(root: Path) -> int:
    """Delete temporary shard directories left by a crashed run; return how many."""
    partial = list((Path(root) / SHARDS).glob('.tmp-*'))
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return len(partial)


class Dataset:
    """Read-only, memory-mapped view of all complete shards of a dataset."""

    def __init__(self, root: Path):
        self.root = Path(root)
        card = self.root / CARD
        if not card.is_file():
            raise DatasetError(f'{card} not found: generate the dataset first '
                               '(softmaint-dataset generate --out DIR)')
        try:
            self.card = json.loads(card.read_text())
        except json.JSONDecodeError as err:
            raise DatasetError(f'{card} is not valid JSON ({err}): generate the dataset '
                               'again') from None
        indices = completed_shards(self.root)
        if not indices:
            raise DatasetError(f'{self.root} has no complete shard: generate the dataset '
                               '(again) with softmaint-dataset generate')
        self._shards = [self.root / SHARDS / shard_name(i) for i in indices]
        self._maps: Dict[str, List[np.ndarray]] = {}
        self._lengths = [len(part) for part in self._parts('episode')]
        self._offsets = np.concatenate([[0], np.cumsum(self._lengths)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def names(self) -> List[str]:
        """Array names present in every shard."""
        return sorted(p.stem for p in self._shards[0].glob('*.npy'))

    def _parts(self, name: str) -> List[np.ndarray]:
        if name not in self._maps:
            try:
                self._maps[name] = [np.load(s / f'{name}.npy', mmap_mode='r')
                                    for s in self._shards]
            except FileNotFoundError as err:
                raise DatasetError(f'array {name!r} missing in {err.filename}; '
                                   f'present: {self.names}') from err
        return self._maps[name]

    def take(self, name: str, indices: Iterable[int]) -> np.ndarray:
        """Gather episodes `indices` (global) of array `name` into memory."""
        indices = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f'episode index out of range [0, {len(self)})')
        parts = self._parts(name)
        shard = np.searchsorted(self._offsets, indices, side='right') - 1
        out = np.empty((len(indices),) + parts[0].shape[1:], dtype=parts[0].dtype)
        for s in np.unique(shard):
            rows = shard == s
            out[rows] = parts[s][indices[rows] - self._offsets[s]]
        return out

    def array(self, name: str) -> np.ndarray:
        """Load the whole array `name` into memory (use take() for large camera arrays)."""
        return np.concatenate(self._parts(name))
