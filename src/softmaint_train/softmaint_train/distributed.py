"""
Data-parallel training with torch.distributed, one process per rank, started by torchrun.

Launched plainly everything runs in one process (world size 1) and every helper here is a
no-op. Launched by torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in the
environment), `setup` joins the process group (gloo on CPU, nccl on GPUs) and the training
loops of train.py run data-parallel with DistributedDataParallel:

* Every rank draws the same *global* batch from the same seeded generator, so the batches do
  not depend on the number of processes, and forwards only its contiguous slice of it
  (`shard`): the equivalent of a DistributedSampler for the in-memory window arrays.
* `gathered` puts the slices' outputs back together, so every rank evaluates the loss of the
  whole global batch exactly as one process does, relational terms (in-batch pairs) and
  weighted means included. Only the rank's own slice carries gradient; the backward runs on
  world x loss, and DDP's average of the ranks' gradients is then the one-process gradient.
  A run therefore gives the same model on any number of processes up to floating-point
  rounding, dropout included: the loops draw the masks of the whole global batch from a
  generator seeded by seed and step and keep the rank's rows (models.RowDropout).
* Rank 0 owns the files: it reads checkpoints and caches and sends them to the others
  (`from_main`), and it alone writes checkpoints, caches, metrics and reports. Nodes need
  no shared filesystem, only the dataset at the same path.
"""
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn
import torch.distributed as dist

DEVICES = ('auto', 'cpu', 'cuda')
_DEVICE = torch.device('cpu')


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str = 'auto') -> torch.device:
    """Return the device of this process: 'auto' picks CUDA where there is a GPU."""
    if name not in DEVICES:
        raise DeviceError(f'device {name!r}: use one of {", ".join(DEVICES)}')
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda':
        if not torch.cuda.is_available():
            raise DeviceError('--device cuda: torch sees no GPU (torch.cuda.is_available() '
                              'is False); use --device cpu or auto')
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0'))
                            % torch.cuda.device_count())
    return torch.device('cpu')


def setup(device: str = 'auto') -> torch.device:
    """Pick this process's device and, under torchrun, join the process group."""
    global _DEVICE
    _DEVICE = resolve_device(device)
    if _DEVICE.type == 'cuda':
        torch.cuda.set_device(_DEVICE)
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 and not dist.is_initialized():
        dist.init_process_group(backend='nccl' if _DEVICE.type == 'cuda' else 'gloo')
    return _DEVICE


def device() -> torch.device:
    """Return the device chosen by setup (CPU if setup was not called)."""
    return _DEVICE


def teardown() -> None:
    """Leave the process group (if any) at the end of a command."""
    if dist.is_initialized():
        dist.destroy_process_group()


def dist_info() -> Tuple[int, int]:
    """Return (rank, world size); under torchrun joins the process group on first use."""
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 and not dist.is_initialized():
        setup('cpu' if _DEVICE.type == 'cpu' else 'cuda')
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Return True on rank 0 (or without torchrun): the process that writes files."""
    return dist_info()[0] == 0


def seed_rank(seed: int) -> None:
    """
    Seed torch's global generator per rank; one process keeps its stream as it is.

    The training loops' dropout does not draw from it (RowDropout has its own generator);
    whatever else draws from torch's global generator then differs between ranks.
    """
    rank, world = dist_info()
    if world > 1:
        torch.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))


def wrap(model: nn.Module) -> nn.Module:
    """Return the model wrapped in DistributedDataParallel under torchrun, else as it is."""
    if dist_info()[1] == 1:
        return model
    ids = [_DEVICE.index] if _DEVICE.type == 'cuda' else None
    # some outputs feed no loss term in some configs (e.g. the projection without feature
    # alignment): their parameters get no gradient, which DDP must be told to expect
    return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                               find_unused_parameters=True)


def split_sizes(n: int, world: int) -> List[int]:
    """Sizes of the contiguous slices of a global batch of n rows over world ranks."""
    return [n // world + (r < n % world) for r in range(world)]


def shard(n: int) -> Tuple[slice, List[int]]:
    """Return this rank's slice of a global batch of n rows and every rank's slice size."""
    rank, world = dist_info()
    if n < world:
        raise ValueError(f'a global batch of {n} rows cannot be split over {world} processes: '
                         'raise the batch size or start fewer processes')
    sizes = split_sizes(n, world)
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank]), sizes


def gathered(out: Dict[str, torch.Tensor], sizes: Sequence[int]) -> Dict[str, torch.Tensor]:
    """
    Return the outputs of the whole global batch from every rank's slice (one all_gather).

    This rank's rows keep their autograd graph, the others' are values; rows are in global
    batch order. With one process `out` is returned as it is.
    """
    if len(sizes) == 1:
        return out
    rank = dist.get_rank()
    n, width = sizes[rank], max(sizes)
    keys = list(out)
    flat = [out[k].detach().reshape(n, -1).float() for k in keys]
    columns = [f.shape[1] for f in flat]
    buffer = flat[0].new_zeros(width, sum(columns))
    buffer[:n] = torch.cat(flat, dim=1)
    parts = [torch.empty_like(buffer) for _ in sizes]
    dist.all_gather(parts, buffer)
    result = {}
    for i, key in enumerate(keys):
        lo = sum(columns[:i])
        rows = [p[:m, lo:lo + columns[i]].reshape((m,) + out[key].shape[1:])
                .to(out[key].dtype) for p, m in zip(parts, sizes)]
        rows[rank] = out[key]
        result[key] = torch.cat(rows)
    return result


def from_main(fn: Callable, *args):
    """Run fn(*args) on rank 0 only and return its (picklable) result on every rank."""
    rank, world = dist_info()
    result = fn(*args) if rank == 0 else None
    if world == 1:
        return result
    box = [result]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value) -> list:
    """Return every rank's (picklable) value, in rank order."""
    world = dist_info()[1]
    if world == 1:
        return [value]
    values = [None] * world
    dist.all_gather_object(values, value)
    return values


def all_sum(tensors: Sequence[torch.Tensor]) -> None:
    """Sum tensors over the ranks, in place."""
    if dist_info()[1] > 1:
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
