"""
Training: the teacher stage and the student (distillation) stage, in flat readable loops.

Launched plainly it trains in one process; launched by `torchrun` every stage runs
data-parallel with DistributedDataParallel (distributed.py): every rank draws the same global
batch, forwards its slice, and the loss of the whole batch is computed from the gathered
outputs, so the trained model does not depend on the number of processes. Rank 0 writes the
files and shows progress bars. With a state file a loop saves its state every
`checkpoint_every` steps and a rerun resumes from it (checkpoints.TrainingState). A non-finite
loss stops training with an error naming the terms. Every loss, schedule and augmentation is
looked up by name in the registry of losses.py.
"""
from dataclasses import replace
import math
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from tqdm import tqdm

from . import distributed
from .checkpoints import build_student, build_teacher, state_key, TrainingState
from .config import TrainConfig
from .data import (lighting_bins, lighting_edges, make_inputs, make_targets,
                   privileged_stats, privileged_targets, Windows)
from .distributed import dist_info, is_main
from .losses import angle_encode, get_loss
from .models import N_DAMAGE, N_FATIGUE, RowDropout, Student, Teacher

TEACHER_CHUNK = 128

__all__ = ['dist_info', 'is_main']   # re-exported: the pipeline's rank queries


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's global state (batches use explicit generators)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def _to_device(batch):
    """Move a tensor, or a (nested) dict of tensors, to the training device."""
    if isinstance(batch, dict):
        return {k: _to_device(v) for k, v in batch.items()}
    return batch.to(distributed.device())


def _optimiser_step(opt, model: nn.Module, loss: torch.Tensor, terms: Dict[str, torch.Tensor],
                    stage: str, step: int, lr: Optional[float] = None,
                    clip: Optional[float] = 1.0, bar=None,
                    objective: Optional[torch.Tensor] = None) -> None:
    """
    One update: stop on a non-finite loss, set the learning rate, backward, clip, step, log.

    lr None keeps the optimiser's rate, clip None skips gradient-norm clipping; with a progress
    bar the loss is shown every 10 steps. The backward runs on `objective` (default: the loss;
    under DDP the gathered batch's loss times the world size, see _ddp_objective).
    """
    if not torch.isfinite(loss):
        parts = ', '.join(f'{k}={float(v.detach()):.4g}' for k, v in terms.items())
        raise TrainingError(f'{stage}: non-finite loss at step {step} ({parts}); lower the '
                            'learning rate or check the inputs for NaN/inf')
    if lr is not None:
        for group in opt.param_groups:
            group['lr'] = lr
    opt.zero_grad(set_to_none=True)
    (loss if objective is None else objective).backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    if bar is not None and step % 10 == 0:
        bar.set_postfix(loss=f'{loss.item():.3f}')


def cosine_lr(step: int, total: int, base: float, warmup: int = 20) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay from `base` to 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _ddp_objective(loss: torch.Tensor, replicated: Optional[torch.Tensor] = None):
    """
    Return what the backward runs on: the global batch's loss, times the world size (DDP).

    Only this rank's rows of the gathered outputs carry gradient and DDP averages the ranks'
    gradients, so world x loss gives the one-process gradient. `replicated` terms depend on
    the weights alone (every rank computes the same value, e.g. EWC) and are not scaled.
    """
    objective = dist_info()[1] * loss
    return objective if replicated is None else objective + replicated


def _sharded_forward(net: nn.Module, inputs, mask: torch.Tensor, sizes, *args):
    """Forward this rank's rows on the training device; return the global batch's outputs."""
    return distributed.gathered(net(_to_device(inputs), _to_device(mask), *args), sizes)


def _dropout_rows(model: nn.Module, seed: Optional[Sequence[int]], rows: slice = slice(None),
                  total: int = 0) -> None:
    """
    Draw the dropout masks of this step from a generator seeded by `seed` (e.g. (seed, step)).

    Every rank draws the masks of the whole global batch and keeps its `rows` (RowDropout):
    the drop pattern does not depend on the number of processes, and a resumed run draws the
    same masks. seed None returns the model to plain dropout.
    """
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))
    for module in model.modules():
        if isinstance(module, RowDropout):
            module.generator, module.rows, module.total = generator, rows, total


# teacher/student.urgency_loss as configs and checkpoints record it -> (registry name of the
# loss, the model output it reads). The one place the config values are translated.
URGENCY_LOSSES = {'mse': ('urgency_mse', 'urgency'), 'log_rul': ('log_rul', 'log_rul')}


def urgency_loss(kind: str, urgency, log_rul, target, weights=None):
    """Return the configured urgency loss (URGENCY_LOSSES): 'mse' on u, 'log_rul' on z."""
    name, output = URGENCY_LOSSES[kind]
    pred = {'urgency': urgency, 'log_rul': log_rul}[output]
    return get_loss(name)(pred, target, weights)


# What the students distil from a teacher, per window (teacher_outputs, its cache).
TEACHER_OUTPUTS = ('fatigue', 'damage', 'urgency', 'log_rul', 'feature')
# distill.urgency_kd -> the urgency distillation loss on the student's log RUL and the teacher
# output it reads; 'censored' is the student's own urgency loss on the teacher's urgency.
URGENCY_KD = {'censored': None, 'log_rul': ('log_rul_kd', 't_log_rul')}


# ----------------------------------------------------------------------------- teacher stage

def train_teacher(cfg: TrainConfig, windows: Windows, stats, progress: bool = True,
                  state: Optional[Path] = None) -> Teacher:
    """
    Supervised multi-task training of the teacher on the teacher view of simulation.

    Loss = CE(fatigue) + CE(damage) + w_u * urgency loss + w_p * MSE(privileged targets, see
    data.privileged_targets). Each step draws a global batch of teacher.batch_size windows,
    whatever the number of processes. `state`: resumable state file (TrainingState).
    """
    tc = cfg.teacher
    seed_everything(cfg.seed)
    priv = windows.arrays['privileged']
    p_stats = privileged_stats(priv, tc.privileged_target)
    model = build_teacher(cfg, priv.shape[1]).to(distributed.device())
    model.privileged_stats = p_stats
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(windows) / tc.batch_size))
    total = tc.epochs * steps_per_epoch
    rng = np.random.default_rng(cfg.seed * 1000)        # the same on every rank
    resume = TrainingState(state, cfg.checkpoint_every, state_key('teacher', cfg, windows))
    distributed.seed_rank(cfg.seed)
    first, order = resume.restore(model, opt, rng, np.empty(0, dtype=np.int64))
    net = distributed.wrap(model)
    bar = tqdm(range(first, total), desc='teacher', disable=not (progress and is_main()),
               initial=first, total=total, dynamic_ncols=True)
    model.train()
    for step in bar:
        if len(order) < tc.batch_size:
            order = np.concatenate([order, rng.permutation(len(windows))])
        index, order = np.sort(order[:tc.batch_size]), order[tc.batch_size:]
        mine, sizes = distributed.shard(len(index))
        _dropout_rows(model, (cfg.seed, 0, step), mine, len(index))
        inputs, _ = make_inputs(windows, index[mine], stats)
        mask = torch.from_numpy(windows.arrays['mask'][index].astype(np.float32))
        targets = _to_device(make_targets(windows, index))
        privileged = _to_device(torch.from_numpy(
            privileged_targets(priv[index], p_stats, tc.privileged_target)))
        out = _sharded_forward(net, inputs, mask[mine], sizes)
        terms = {
            'fatigue': get_loss('cross_entropy')(out['fatigue'], targets['fatigue']),
            'damage': get_loss('cross_entropy')(out['damage'], targets['damage']),
            'urgency': tc.urgency_weight * urgency_loss(tc.urgency_loss, out['urgency'],
                                                        out['log_rul'], targets['urgency']),
            'privileged': tc.privileged_weight * get_loss('privileged_mse')(out['privileged'],
                                                                            privileged),
        }
        if 'unimodal' in out:
            terms['unimodal'] = tc.unimodal_weight * get_loss('unimodal_ce')(
                out['unimodal'], _one_hot(targets['fatigue'], N_FATIGUE),
                _one_hot(targets['damage'], N_DAMAGE), _to_device(mask))
        loss = sum(terms.values())
        _optimiser_step(opt, model, loss, terms, 'teacher', step,
                        lr=cosine_lr(step, total, tc.lr), bar=bar,
                        objective=_ddp_objective(loss))
        resume.save(step + 1, total, model, opt, rng, order)
    _dropout_rows(model, None)
    model.eval()
    return model.cpu()


@torch.no_grad()
def teacher_outputs(teacher: Teacher, windows: Windows, stats, lighting: float = 1.0,
                    mask: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Teacher outputs (TEACHER_OUTPUTS) for every window (eval mode, chunked)."""
    teacher.eval()
    parts = []
    for start in range(0, len(windows), TEACHER_CHUNK):
        index = np.arange(start, min(start + TEACHER_CHUNK, len(windows)))
        inputs, m = make_inputs(windows, index, stats, mask=mask, lighting=lighting)
        out = teacher(inputs, m)
        parts.append({k: out[k].numpy() for k in TEACHER_OUTPUTS})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def teacher_outputs_from_dataset(teacher, ds, rows, stats, chunk: int = 512, **kwargs):
    """teacher_outputs over dataset rows, loading the (large) teacher view in chunks."""
    parts = []
    for start in range(0, len(rows), chunk):
        windows = Windows.load(ds, 'teacher', rows[start:start + chunk])
        parts.append(teacher_outputs(teacher, windows, stats, **kwargs))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ----------------------------------------------------------------------------- student stage

def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(labels, classes).float()


def _student_batch(windows: Windows, index, labelled, teacher, stats, bins, cfg, rng,
                   mine: slice = slice(None)):
    """
    Assemble one student batch: inputs, train mask, targets, teacher targets, augments.

    Everything is for the whole (global) batch `index` except the inputs, which are those of
    this rank's rows `mine` (the random draws are the same on every rank).
    """
    dc = cfg.distill
    data_mask = windows.arrays['mask'][index]
    train_mask = get_loss('modality_dropout')(data_mask, dc.modality_dropout, rng)
    targets = make_targets(windows, index)
    mixing = dc.mix.enabled and rng.random() < dc.mix.probability
    inputs, _ = make_inputs(windows, index if mixing else index[mine], stats)
    batch = {
        'inputs': inputs,
        'mask': torch.from_numpy(train_mask.astype(np.float32)),
        'data_mask': torch.from_numpy(data_mask.astype(np.float32)),
        'fatigue': _one_hot(targets['fatigue'], N_FATIGUE),
        'damage': _one_hot(targets['damage'], N_DAMAGE),
        'urgency': targets['urgency'],
        'labelled': torch.from_numpy(labelled.astype(np.float32)),
        'lighting': torch.from_numpy(bins[index]),
    }
    if teacher is not None:
        for key in TEACHER_OUTPUTS:
            batch['t_' + key] = torch.from_numpy(teacher[key][index])
    if mixing:
        batch = _mix(batch, dc.mix, rng)
        batch['inputs'] = {name: x[mine] for name, x in batch['inputs'].items()}
    return batch


def _mix(batch, mc, rng):
    """Convex combinations of the batch with a permutation of itself, plus noise."""
    n = len(batch['urgency'])
    perm = torch.from_numpy(rng.permutation(n))
    lam = torch.from_numpy(rng.beta(mc.beta, mc.beta, size=n).astype(np.float32))
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    out = dict(batch)
    both = batch['mask'] * batch['mask'][perm]
    out['inputs'] = {}
    for i, (name, x) in enumerate(batch['inputs'].items()):
        mixed = get_loss('convex_mix')(x, x[perm], lam, mc.noise, generator=gen)
        keep = both[:, i].reshape((-1,) + (1,) * (x.dim() - 1))
        out['inputs'][name] = mixed * keep
    out['mask'] = both
    out['data_mask'] = batch['data_mask'] * batch['data_mask'][perm]
    for key in ('fatigue', 'damage', 'urgency', *('t_' + k for k in TEACHER_OUTPUTS)):
        if key in batch:
            out[key] = get_loss('convex_mix')(batch[key], batch[key][perm], lam)
    out['labelled'] = batch['labelled'] * batch['labelled'][perm]
    out['lighting'] = torch.where(lam >= 0.5, batch['lighting'], batch['lighting'][perm])
    return out


def _unimodal_targets(batch, teacher: bool):
    """Targets of the per-modality heads: labels where known, else the teacher's softmax."""
    lab = batch['labelled'][:, None]
    if not teacher:
        return batch['fatigue'], batch['damage'], batch['data_mask'] * lab
    fatigue = lab * batch['fatigue'] + (1 - lab) * F.softmax(batch['t_fatigue'], dim=-1)
    damage = lab * batch['damage'] + (1 - lab) * F.softmax(batch['t_damage'], dim=-1)
    return fatigue, damage, batch['data_mask']


def urgency_kd(kind: str, student_kind: str, out, member: int, batch):
    """Urgency distillation of one ensemble member (URGENCY_KD)."""
    if URGENCY_KD[kind] is None:
        return urgency_loss(student_kind, out['urgency'][:, member], out['log_rul'][:, member],
                            batch['t_urgency'])
    name, target = URGENCY_KD[kind]
    return get_loss(name)(out['log_rul'][:, member], batch[target])


def student_loss(out, batch, cfg: TrainConfig, step: int, total: int):
    """All student terms for one batch; returns (loss, terms) with terms for logging."""
    dc, sc = cfg.distill, cfg.student
    k = out['fatigue'].shape[1]
    lab = batch['labelled']
    terms = {}

    def mean_members(fn):
        return sum(fn(i) for i in range(k)) / k

    sce, kd_kl = get_loss('soft_cross_entropy'), get_loss('kd_kl')
    sup = mean_members(lambda i: sce(out['fatigue'][:, i], batch['fatigue'], lab)
                       + sce(out['damage'][:, i], batch['damage'], lab))
    sup_u = mean_members(lambda i: urgency_loss(sc.urgency_loss, out['urgency'][:, i],
                                                out['log_rul'][:, i], batch['urgency'], lab))
    teacher = dc.use_teacher and 't_fatigue' in batch
    if teacher and dc.kd:
        alpha = get_loss('linear_ramp')(step, total, dc.alpha_start, dc.alpha_end)
        kd = mean_members(
            lambda i: kd_kl(out['fatigue'][:, i], batch['t_fatigue'], dc.temperature)
            + kd_kl(out['damage'][:, i], batch['t_damage'], dc.temperature))
        kd_u = mean_members(lambda i: urgency_kd(dc.urgency_kd, sc.urgency_loss, out, i, batch))
        if dc.presence_weight > 0:
            kd = kd + dc.presence_weight * mean_members(
                lambda i: get_loss('presence_kd')(out['damage'][:, i], batch['t_damage']))
        terms['classes'] = get_loss('kd_objective')(sup, kd, alpha)
        terms['urgency'] = sc.urgency_weight * ((1 - alpha) * sup_u
                                                + alpha * dc.urgency_kd_weight * kd_u)
    else:
        terms['classes'] = sup
        terms['urgency'] = sc.urgency_weight * sup_u
    if teacher:
        w = (get_loss('sigmoid_schedule')(step, total, dc.sigmoid_steepness)
             if dc.alignment_schedule == 'sigmoid' else 1.0)
        t_feat = batch['t_feature']
        if dc.feature == 'cosine' and dc.feature_weight > 0:
            terms['feature'] = w * dc.feature_weight * mean_members(
                lambda i: get_loss('feature_cosine')(out['projection'][:, i], t_feat))
        elif dc.feature == 'contrastive' and dc.feature_weight > 0:
            terms['feature'] = w * dc.feature_weight * mean_members(
                lambda i: get_loss('feature_contrastive')(out['projection'][:, i], t_feat,
                                                          dc.contrastive_tau))
        if dc.relational_weight > 0:
            terms['relational'] = w * dc.relational_weight * mean_members(
                lambda i: get_loss('rkd_distance')(out['feature'][:, i], t_feat))
        if dc.angle_weight > 0:
            terms['angle'] = w * dc.angle_weight * mean_members(
                lambda i: get_loss('rkd_angle')(out['feature'][:, i], t_feat))
        if dc.fidelity_weight > 0:
            terms['fidelity'] = w * dc.fidelity_weight * mean_members(
                lambda i: get_loss('product_state_fidelity')(
                    angle_encode(out['projection'][:, i]), angle_encode(t_feat),
                    dc.fidelity_reduction))
    if sc.unimodal_weight > 0 and 'unimodal' in out:
        fatigue, damage, weights = _unimodal_targets(batch, teacher)
        terms['unimodal'] = sc.unimodal_weight * mean_members(
            lambda i: get_loss('unimodal_ce')(out['unimodal'][:, i], fatigue, damage, weights))
    if dc.reconstruction_weight > 0:
        target = out['modality_features'].detach()
        weights = batch['data_mask'][:, None, :].expand(-1, k, -1)
        terms['reconstruction'] = dc.reconstruction_weight * get_loss('reconstruction_mse')(
            out['reconstruction'], target, weights)
    if dc.adversarial_weight > 0 and 'lighting' in out:
        terms['adversarial'] = dc.adversarial_weight * mean_members(
            lambda i: get_loss('domain_adversarial')(out['lighting'][:, i], batch['lighting']))
    return sum(terms.values()), terms


def train_student(cfg: TrainConfig, windows: Windows, labelled: np.ndarray, stats,
                  teacher: Optional[Dict[str, np.ndarray]] = None, progress: bool = True,
                  desc: str = 'student', state: Optional[Path] = None) -> Student:
    """
    Train the K-member student on field-view windows.

    `labelled` (positions into windows) are the windows whose labels may be used; `teacher`
    holds cached teacher outputs for every window (None or distill.use_teacher False = from
    scratch). With a teacher, every step draws batch_size windows from the whole pool plus
    batch_size / 4 labelled windows; from scratch, batch_size labelled windows. Both run the
    same number of steps (a fair compute budget), whatever the number of processes. `state`:
    resumable state file (TrainingState).
    """
    sc, dc = cfg.student, cfg.distill
    seed_everything(cfg.seed)
    use_teacher = teacher is not None and dc.use_teacher
    model = build_student(cfg).to(distributed.device())
    opt = torch.optim.AdamW(model.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)
    pool = np.arange(len(windows))
    steps_per_epoch = max(1, math.ceil(len(pool) / sc.batch_size))
    total = max(sc.epochs * steps_per_epoch, sc.min_labelled_steps)
    edges = lighting_edges(windows.arrays['lighting'])
    bins = lighting_bins(windows.arrays['lighting'], edges)
    is_labelled = np.zeros(len(windows), dtype=bool)
    is_labelled[labelled] = True
    rng = np.random.default_rng(cfg.seed * 1000 + 1)    # the same on every rank
    n_lab = max(8, sc.batch_size // 4)
    outputs = [teacher[k] for k in sorted(teacher)] if use_teacher else []
    resume = TrainingState(state, cfg.checkpoint_every,
                           state_key(desc, cfg, windows, labelled, *outputs))
    distributed.seed_rank(cfg.seed)
    first, order = resume.restore(model, opt, rng, np.empty(0, dtype=np.int64))
    net = distributed.wrap(model)
    bar = tqdm(range(first, total), desc=desc, disable=not (progress and is_main()),
               initial=first, total=total, dynamic_ncols=True)
    model.train()
    for step in bar:
        if use_teacher:
            if len(order) < sc.batch_size:
                order = np.concatenate([order, rng.permutation(pool)])
            index, order = order[:sc.batch_size], order[sc.batch_size:]
            index = np.concatenate([index, rng.choice(labelled, size=n_lab)])
        else:
            index = rng.choice(labelled, size=sc.batch_size, replace=len(labelled) < 4 * sc.
                               batch_size)
        index = np.sort(index)
        mine, sizes = distributed.shard(len(index))
        _dropout_rows(model, (cfg.seed, 1, step), mine, len(index))
        batch = _to_device(_student_batch(windows, index, is_labelled[index],
                                          teacher if use_teacher else None, stats, bins, cfg,
                                          rng, mine))
        reversal = get_loss('dann_reversal')(step, total)
        out = _sharded_forward(net, batch['inputs'], batch['mask'][mine], sizes, reversal)
        loss, terms = student_loss(out, batch, cfg, step, total)
        _optimiser_step(opt, model, loss, terms, desc, step, lr=cosine_lr(step, total, sc.lr),
                        bar=bar, objective=_ddp_objective(loss))
        resume.save(step + 1, total, model, opt, rng, order)
    _dropout_rows(model, None)
    model.eval()
    return model.cpu()


# ----------------------------------------------------------------------------- EWC fine-tuning

def fisher_diagonal(model: Student, windows: Windows, stats, batches: int = 20,
                    batch_size: int = 64, seed: int = 0) -> Dict[str, torch.Tensor]:
    """
    Diagonal empirical Fisher of the ensemble's labelled log-likelihood on old data.

    Under torchrun the batches are dealt out to the ranks (the same draws on every rank) and
    the sums added up: the same Fisher as one process computes.
    """
    rank, world = dist_info()
    rng = np.random.default_rng(seed)
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
    ce = get_loss('cross_entropy')
    model.eval()
    for b in range(batches):
        index = np.sort(rng.choice(len(windows), size=min(batch_size, len(windows)),
                                   replace=False))
        if b % world != rank:
            continue
        inputs, mask = make_inputs(windows, index, stats)
        targets = make_targets(windows, index)
        out = model(inputs, mask)
        nll = sum(ce(out['fatigue'][:, i], targets['fatigue'])
                  + ce(out['damage'][:, i], targets['damage'])
                  for i in range(out['fatigue'].shape[1]))
        model.zero_grad(set_to_none=True)
        nll.backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2 / batches
    model.zero_grad(set_to_none=True)
    distributed.all_sum(list(fisher.values()))
    return fisher


def finetune_ewc(model: Student, cfg: TrainConfig, windows: Windows, stats,
                 fisher: Dict[str, torch.Tensor], strength: float, steps: int = 200,
                 lr: float = 5e-4, progress: bool = True,
                 state: Optional[Path] = None) -> Student:
    """
    Fine-tune on new labelled field windows with the EWC penalty against the old weights.

    Data-parallel under torchrun like train_student (global batches of student.batch_size);
    `state`: resumable state file (TrainingState). Only the labels' terms train (classes,
    urgency, unimodal heads): the reconstruction term regresses the student's own modality
    features, which explode on inputs far outside the training range (a deep-sea pressure of
    31 MPa is 13,700 training standard deviations) and then drown the labels (a run with it
    fell from damage macro F1 0.68 to 0.09 on held-out deep-sea bags); recordings carry no
    lighting bin for the adversarial term.
    """
    cfg = replace(cfg, distill=replace(cfg.distill, reconstruction_weight=0.0,
                                       adversarial_weight=0.0))
    model.to(distributed.device())
    anchors = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = _to_device(fisher)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(cfg.seed + 7)
    bins = np.zeros(len(windows), dtype=np.int64)
    anchor_bytes = [a.cpu().numpy() for a in anchors.values()]
    resume = TrainingState(state, cfg.checkpoint_every,
                           state_key(f'finetune-{strength}-{steps}-{lr}', cfg, windows,
                                     *anchor_bytes))
    distributed.seed_rank(cfg.seed + 7)
    first, _ = resume.restore(model, opt, rng, np.empty(0, dtype=np.int64))
    net = distributed.wrap(model)
    model.train()
    for step in tqdm(range(first, steps), desc='finetune', initial=first, total=steps,
                     disable=not (progress and is_main()), dynamic_ncols=True):
        index = np.sort(rng.choice(len(windows), size=cfg.student.batch_size))
        mine, sizes = distributed.shard(len(index))
        _dropout_rows(model, (cfg.seed, 2, step), mine, len(index))
        batch = _to_device(_student_batch(windows, index, np.ones(len(index), bool), None,
                                          stats, bins, cfg, rng, mine))
        out = _sharded_forward(net, batch['inputs'], batch['mask'][mine], sizes)
        loss, terms = student_loss(out, batch, cfg, step, steps)
        terms['ewc'] = get_loss('ewc_penalty')(model.named_parameters(), anchors, fisher,
                                               strength)
        _optimiser_step(opt, model, loss + terms['ewc'], terms, 'finetune', step, clip=None,
                        objective=_ddp_objective(loss, terms['ewc']))
        resume.save(step + 1, steps, model, opt, rng, np.empty(0, dtype=np.int64))
    _dropout_rows(model, None)
    model.eval()
    return model.cpu()
