"""
Checkpoints and resumable training states: what a stage saves, and how a model comes back.

A checkpoint holds the weights with the config that built them (and whatever the stage adds:
stats, calibration), so `load_checkpoint` rebuilds the model without any other input. A
TrainingState is the mid-stage file a loop resumes from (train.py's loops use it).
"""
from dataclasses import asdict
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from . import distributed
from .config import config_from_dict, TrainConfig
from .data import VIEW_SPECS, Windows
from .distributed import dist_info, is_main
from .models import shapes_from_spec, Student, Teacher


class TrainingState:
    """
    Resumable state of one training loop in one file, written by rank 0 only.

    Every `every` steps (and after the last) the file holds the weights, the optimiser, the
    step, the batch generator and the pending batch order, and every rank's torch generator;
    a loop started with the same key (config and data) continues from it. The batches depend
    only on that state, so a run may resume on another number of processes.
    """

    def __init__(self, path: Optional[Path], every: int, key: str):
        self.path = Path(path) if path is not None else None
        self.every = every
        self.key = key

    def restore(self, model: nn.Module, opt, rng: np.random.Generator, order: np.ndarray):
        """Load a matching state into model, opt and rng; return (first step, batch order)."""
        saved = distributed.from_main(self._read)
        if saved is None:
            return 0, order
        model.load_state_dict(saved['model'])
        opt.load_state_dict(saved['optimiser'])
        rng.bit_generator.state = saved['rng']
        rank = dist_info()[0]
        if rank < len(saved['torch_rng']):
            torch.set_rng_state(saved['torch_rng'][rank])
        if is_main():
            print(f'[softmaint-train] resuming {self.path.name} at step {saved["step"]}',
                  flush=True)
        return saved['step'], saved['order']

    def _read(self):
        if self.path is None or not self.path.is_file():
            return None
        saved = torch.load(self.path, map_location='cpu', weights_only=False)
        if saved.get('key') != self.key:
            print(f'[softmaint-train] {self.path.name} belongs to another config or data; '
                  'starting over', flush=True)
            return None
        return saved

    def save(self, step: int, total: int, model: nn.Module, opt, rng, order) -> None:
        """Save the state after `step` steps if it is due (every `every`, and the last)."""
        if self.path is None or not (step == total or (self.every and step % self.every == 0)):
            return
        torch_rng = distributed.gather_objects(torch.get_rng_state())
        if not is_main():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f'.{self.path.name}.tmp')
        torch.save({'key': self.key, 'step': step,
                    'model': {k: v.cpu() for k, v in model.state_dict().items()},
                    'optimiser': opt.state_dict(), 'rng': rng.bit_generator.state,
                    'order': order, 'torch_rng': torch_rng}, tmp)
        os.replace(tmp, self.path)


def _result_fields(cfg: TrainConfig) -> dict:
    """Return the config a run's results depend on: not how often or where it saves."""
    return {k: v for k, v in asdict(cfg).items() if k not in ('checkpoint_every', 'runs_dir')}


def config_digest(cfg: TrainConfig) -> str:
    """SHA-256 of the config a run's results depend on (recorded, compared on resume)."""
    return hashlib.sha256(json.dumps(_result_fields(cfg), sort_keys=True).encode()).hexdigest()


def state_key(stage: str, cfg: TrainConfig, windows: Windows, *arrays) -> str:
    """Return what a resumable state must match: stage, config, dataset rows, teacher outputs."""
    digest = hashlib.sha256(json.dumps([stage, _result_fields(cfg)], sort_keys=True).encode())
    for array in (windows.arrays['row'],) + arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def remove_state(path: Path) -> None:
    """Delete a training state once the stage's final checkpoint is written (rank 0)."""
    if is_main() and Path(path).is_file():
        Path(path).unlink()


def save_checkpoint(path: Path, kind: str, model: nn.Module, cfg: TrainConfig, **extra):
    """Save weights with the config and everything needed to rebuild the model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, 'module', model)
    tmp = path.with_name(f'.{path.name}.tmp')   # a save cut off must not look like a checkpoint
    torch.save({'kind': kind, 'config': asdict(cfg), 'state_dict': model.state_dict(),
                **extra}, tmp)
    os.replace(tmp, path)


def build_teacher(cfg: TrainConfig, privileged: int) -> Teacher:
    """Build a fresh teacher for the teacher view."""
    return Teacher(shapes_from_spec(VIEW_SPECS['teacher']), cfg.teacher.model, privileged,
                   unimodal=cfg.teacher.unimodal_weight > 0)


def build_student(cfg: TrainConfig) -> Student:
    """Build a fresh K-member student for the field view."""
    return Student(shapes_from_spec(VIEW_SPECS['field']), cfg.student.model,
                   cfg.student.members, teacher_dim=cfg.teacher.model.d_model,
                   unimodal=cfg.student.unimodal_weight > 0)


def load_checkpoint(path: Path):
    """Rebuild (model, checkpoint dict) from a teacher or student checkpoint."""
    return model_from_checkpoint(torch.load(Path(path), map_location='cpu', weights_only=False))


def model_from_checkpoint(ckpt: dict):
    """Rebuild (model in eval mode, ckpt) from a loaded checkpoint dict."""
    cfg = config_from_dict(ckpt['config'])
    if ckpt['kind'] == 'teacher':
        model = build_teacher(cfg, ckpt['privileged_dim'])
    else:
        model = build_student(cfg)
    model.load_state_dict(ckpt['state_dict'])
    model.eval()
    return model, ckpt
