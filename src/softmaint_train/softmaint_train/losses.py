"""
Every loss, schedule and augmentation of the offline tool, in one registry.

Each entry states its formula and the paper it comes from; tests/train/test_losses.py checks
each one against values computed by hand. Shapes: B = batch, C = classes, D = features.
Training code (train.py) calls every entry through get_loss(name), never the function itself.
"""
import math
from typing import Callable, Dict, Iterable, Tuple

import numpy as np
import torch
import torch.nn.functional as F

# z = log(RUL / horizon) / LOG_RUL_SCALE: 0 at the urgency horizon, about -3..+1.5 over the data.
LOG_RUL_SCALE = 2.0
LOG_RUL_MAX = 5.0           # z is capped here before exp (RUL <= horizon * e^10; no overflow)
URGENCY_CEIL = 1.0 - 1e-6   # urgency 1 would be RUL 0, log -inf

LOSSES: Dict[str, Callable] = {}


def register(name: str):
    """Add a function to LOSSES under `name`."""
    def wrap(fn):
        if name in LOSSES:
            raise KeyError(f'loss {name!r} registered twice')
        LOSSES[name] = fn
        return fn
    return wrap


def get_loss(name: str) -> Callable:
    """Look a loss up by name, with an error listing the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f'unknown loss {name!r}; known: {sorted(LOSSES)}') from None


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor = None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    weights = weights.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


@register('cross_entropy')
def cross_entropy(logits, labels):
    """
    Cross-entropy of hard class labels, mean over the batch.

    L = -mean_b log softmax(z_b)_{y_b}: the maximum-likelihood loss of a softmax classifier
    (Bridle, 'Probabilistic interpretation of feedforward classification network outputs',
    Neurocomputing 1990). torch's fused form; soft_cross_entropy is the soft, weighted one.
    """
    return F.cross_entropy(logits, labels)


@register('soft_cross_entropy')
def soft_cross_entropy(logits, targets, weights=None):
    """
    Cross-entropy with (possibly soft) targets, weighted mean over the batch.

    L = sum_b w_b * (-sum_c y_bc log softmax(z_b)_c) / sum_b w_b. One-hot y is the usual
    supervised loss; convex combinations of one-hots are mixup targets (Zhang et al., ICLR 2018).
    Weights 0 mark unlabelled windows.
    """
    per = -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return _weighted_mean(per, weights)


@register('kd_kl')
def kd_kl(student_logits, teacher_logits, temperature: float):
    """
    Temperature-scaled knowledge distillation (Hinton, Vinyals & Dean, 2015).

    L = T^2 * mean_b KL(softmax(t_b / T) || softmax(s_b / T)); the T^2 keeps gradient
    magnitudes comparable across temperatures.
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)
    return temperature ** 2 * kl.mean()


@register('presence_kd')
def presence_kd(student_logits, teacher_logits, none: int = 0):
    """
    Distillation of "is there damage at all": KL on the none-vs-damage marginal.

    With q = 1 - softmax(z)_none the probability of some damage (T = 1, where the miss-rate
    threshold reads it), L = mean_b KL(Bern(q_t) || Bern(q_s)). Hinton, Vinyals & Dean's KD
    (2015) applied to the coarse partition {none, any damage}: by the data-processing
    inequality it is at most the full KL, so it adds weight to the one boundary the policy acts
    on (any damage -> schedule_maintenance) without changing the optimum.
    """
    def log_presence(logits):
        log_p = F.log_softmax(logits, dim=-1)
        log_none = log_p[..., none]
        log_damage = torch.logsumexp(torch.cat([log_p[..., :none], log_p[..., none + 1:]], -1),
                                     dim=-1)
        return log_none, log_damage
    s_none, s_damage = log_presence(student_logits)
    t_none, t_damage = log_presence(teacher_logits)
    kl = t_none.exp() * (t_none - s_none) + t_damage.exp() * (t_damage - s_damage)
    return kl.mean()


@register('kd_objective')
def kd_objective(supervised, distillation, alpha: float):
    """Hinton et al.'s combination: L = alpha * L_KD + (1 - alpha) * L_supervised."""
    return alpha * distillation + (1.0 - alpha) * supervised


@register('urgency_mse')
def urgency_mse(pred, target, weights=None):
    """
    Least squares on urgency in [0, 1]: L = sum_b w_b (u_b - y_b)^2 / sum_b w_b.

    urgency = 1 - RUL / H clipped at 0 is a piecewise-linear RUL target, regressed by mean
    squared error as in Heimes ('Recurrent neural networks for remaining useful life
    estimation', PHM 2008).
    """
    return _weighted_mean((pred - target) ** 2, weights)


@register('privileged_mse')
def privileged_mse(pred, target):
    """
    Auxiliary regression of the teacher's privileged physics state: L = mean_bd (p_bd - y_bd)^2.

    y = the standardised (optionally signed-log) privileged columns of data.privileged_targets,
    which only simulation has: privileged information used as extra outputs (Caruana & de Sa,
    'Promoting poor features to supervisors: some inputs work better as outputs', NIPS 1997;
    learning using privileged information, Vapnik & Vashist, Neural Networks 2009).
    """
    return F.mse_loss(pred, target)


def urgency_from_log_rul(z):
    """
    Urgency from the log-RUL output: u = clip(1 - exp(S z), 0, 1) with S = LOG_RUL_SCALE.

    The same map as taxonomy.urgency_from_rul(horizon * exp(S z)), inside the graph.
    """
    return torch.clamp(1.0 - torch.exp(LOG_RUL_SCALE * torch.clamp(z, max=LOG_RUL_MAX)),
                       min=0.0)


def log_rul_from_urgency(urgency):
    """Inverse of urgency_from_log_rul where it is invertible: z = log(1 - u) / S."""
    return torch.log1p(-urgency.clamp(max=URGENCY_CEIL)) / LOG_RUL_SCALE


@register('log_rul')
def log_rul_loss(z, urgency, weights=None):
    """
    Censored regression of log remaining useful life, from urgency labels.

    urgency = 1 - RUL / H clipped at 0, so u > 0 gives the exact target z* = log(1 - u) / S,
    while u = 0 only says RUL >= H, i.e. z >= 0: a right-censored observation. The rate laws
    are products (environment x load x own rate), so log RUL is additive in their logs: the
    accelerated-failure-time form of survival analysis (Wei, Stat. Med. 1992), with the censored
    rows handled like a Tobit model (Tobin, Econometrica 1958):
        l_b = (z_b - z*_b)^2 if u_b > 0 else max(0, -z_b)^2,  L = sum_b w_b l_b / sum_b w_b.
    Soft targets (a teacher's urgency) use the same form. NaN labels give a NaN loss.
    """
    target = log_rul_from_urgency(urgency)
    censored = urgency <= 0
    per = torch.where(censored, F.relu(-z).pow(2), (z - target).pow(2))
    return _weighted_mean(per, weights)


@register('log_rul_kd')
def log_rul_kd(z, teacher_z, weights=None):
    """
    Regression on the teacher's log remaining useful life: L = sum_b w_b (z_b - t_b)^2 / sum_b w_b.

    The labels are censored at the urgency horizon (u = 0 only says z >= 0), the teacher's z is
    not: it ranks healthy windows beyond the horizon too. A teacher's regression outputs as the
    student's targets, as in Saputra et al. ('Distilling knowledge from a deep pose regressor
    network', ICCV 2019), on the log scale the rate laws make additive (see log_rul).
    """
    return _weighted_mean((z - teacher_z) ** 2, weights)


@register('feature_cosine')
def feature_cosine(student, teacher):
    """
    Feature alignment through a projection head, cosine form of FitNets' hint loss.

    L = mean_b (1 - cos(g(s_b), t_b)) with g the projection (Romero et al., ICLR 2015 use an
    L2 hint; the cosine variant ignores scale, as in cross-modal supervision transfer, Gupta,
    Hoffman & Malik, CVPR 2016). `student` is already projected.
    """
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


@register('feature_contrastive')
def feature_contrastive(student, teacher, tau: float):
    """
    Contrastive (InfoNCE) alignment of projected student and teacher features.

    Pairs are the two views of the same window.

    L = -mean_i log( exp(<s_i, t_i> / tau) / sum_j exp(<s_i, t_j> / tau) ) with unit-norm
    s, t; the other windows of the batch are the negatives (CRD, Tian, Krishnan & Isola,
    ICLR 2020, with in-batch negatives instead of a memory bank; van den Oord et al. 2018).
    """
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher, dim=-1)
    logits = s @ t.t() / tau
    return F.cross_entropy(logits, torch.arange(len(s), device=s.device))


def _pairwise_distances(x):
    sq = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    return sq.clamp_min(1e-12).sqrt() * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))


@register('rkd_distance')
def rkd_distance(student, teacher):
    """
    Relational KD, distance-wise (Park, Kim, Lu & Cho, CVPR 2019).

    psi(x_i, x_j) = ||x_i - x_j|| / mu, mu = mean distance over pairs i != j;
    L = mean_{i != j} huber(psi_s(i, j) - psi_t(i, j)) with the Huber (smooth-L1, delta 1).
    Only the structure of the batch is matched, so the feature sizes may differ.
    """
    n = len(student)
    if n < 2:
        return student.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=student.device)
    d_s = _pairwise_distances(student)[off]
    d_t = _pairwise_distances(teacher)[off]
    d_s = d_s / d_s.mean().clamp_min(1e-12)
    d_t = d_t / d_t.mean().clamp_min(1e-12)
    return F.smooth_l1_loss(d_s, d_t)


def _angles(x):
    diff = x[None, :, :] - x[:, None, :]           # diff[j, i] = x_i - x_j
    unit = F.normalize(diff, dim=-1)
    return unit @ unit.transpose(1, 2)              # [j, i, k] = cos of angle i-j-k at j


@register('rkd_angle')
def rkd_angle(student, teacher):
    """
    Relational KD, angle-wise (Park et al., CVPR 2019).

    psi(x_i, x_j, x_k) = <e_ij, e_kj>, e_ij = (x_i - x_j) / ||x_i - x_j||: the cosine of the
    angle at x_j; L = mean over all (j, i, k) of huber(psi_s - psi_t). Degenerate triplets
    (i = j or k = j) give 0 on both sides.
    """
    return F.smooth_l1_loss(_angles(student), _angles(teacher))


def angle_encode(x):
    """Map features to rotation angles in (0, pi): theta = pi * sigmoid(x)."""
    return math.pi * torch.sigmoid(x)


@register('product_state_fidelity')
def product_state_fidelity(theta_s, theta_t, reduction: str = 'neg_log'):
    """
    Align features like the source's 'quantum' method, computed classically and exactly.

    Angle-encode each feature as one qubit, |psi(theta)> = prod_d (cos(theta_d / 2)|0> +
    sin(theta_d / 2)|1>) (angle/RY encoding; Schuld & Petruccione 2018). The fidelity of two
    such product states factorises:
        F = |<psi(a)|psi(b)>|^2 = prod_d cos^2((a_d - b_d) / 2),
    because <q(a_d)|q(b_d)> = cos(a_d/2)cos(b_d/2) + sin(a_d/2)sin(b_d/2) = cos((a_d - b_d)/2).
    reduction 'one_minus': L = mean_b (1 - F_b), which vanishes in gradient for many features;
    'neg_log': L = mean_b (-log F_b) / D = mean of -log cos^2(delta / 2), the same fidelity on a
    log scale. No quantum hardware or simulation is involved: this is a product of cosines.
    """
    half = (theta_s - theta_t) / 2.0
    if reduction == 'one_minus':
        return (1.0 - torch.cos(half).pow(2).prod(dim=-1)).mean()
    if reduction == 'neg_log':
        return -torch.log(torch.cos(half).pow(2).clamp_min(1e-12)).mean()
    raise ValueError(f"reduction must be 'neg_log' or 'one_minus', got {reduction!r}")


@register('reconstruction_mse')
def reconstruction_mse(pred, target, weights):
    """
    Missing-modality feature reconstruction: L = sum_bm w_bm ||r_bm - f_bm||^2 / (E sum w).

    r = the student's prediction of modality m's feature from the fused state (computed
    without the dropped modalities), f = that modality's own encoder feature computed from the
    real input (detached), w = 1 where modality m exists in the data (ShaSpec-like, Wang et al.,
    CVPR 2023; missing-modality hallucination, Hoffman, Gupta & Darrell, CVPR 2016).
    """
    per = (pred - target).pow(2).mean(dim=-1)
    return _weighted_mean(per, weights)


@register('unimodal_ce')
def unimodal_ce(logits, fatigue, damage, weights):
    """
    Per-modality auxiliary classification against modality imbalance.

    logits [B, M, 3 + 5] come from each modality's own feature; fatigue [B, 3] and damage
    [B, 5] are (soft) targets; weights [B, M] are 1 where modality m exists and a target is
    known. L = sum_bm w_bm (CE(f_bm, y^f_b) + CE(d_bm, y^d_b)) / sum_bm w_bm (unimodal
    auxiliary losses, Wang, Tran & Feiszli, 'What makes training multi-modal classification
    networks hard?', CVPR 2020).
    """
    n_fatigue = fatigue.shape[-1]
    ce_f = -(fatigue[:, None] * F.log_softmax(logits[..., :n_fatigue], dim=-1)).sum(-1)
    ce_d = -(damage[:, None] * F.log_softmax(logits[..., n_fatigue:], dim=-1)).sum(-1)
    return _weighted_mean(ce_f + ce_d, weights)


@register('domain_adversarial')
def domain_adversarial(logits, labels):
    """
    Domain-adversarial loss (DANN, Ganin & Lempitsky, ICML 2015).

    L = CE(D(GRL(h)), lighting bin): the discriminator learns the lighting bin, and the gradient
    reversal layer in the model makes the encoder remove it from h (lighting invariance).
    """
    return F.cross_entropy(logits, labels)


@register('ewc_penalty')
def ewc_penalty(params: Iterable[Tuple[str, torch.Tensor]], anchors: Dict[str, torch.Tensor],
                fisher: Dict[str, torch.Tensor], strength: float):
    """
    Elastic weight consolidation (Kirkpatrick et al., PNAS 2017).

    L = (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2 with F the diagonal Fisher information
    on the old data and theta* the old weights.
    """
    total = None
    for name, p in params:
        if name in fisher:
            term = (fisher[name] * (p - anchors[name]).pow(2)).sum()
            total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return 0.5 * strength * total


@register('sigmoid_schedule')
def sigmoid_schedule(step: int, total: int, steepness: float = 10.0) -> float:
    """
    Progressive alignment weight w(t) = 1 / (1 + exp(-k (t / T - 1/2))), t = step, T = total.

    Starts near 0 and ends near 1: easy (supervised) first, the alignment later, in the spirit
    of curriculum learning (Bengio et al., ICML 2009); the sigmoid form is this project's.
    """
    x = step / max(total, 1) - 0.5
    return 1.0 / (1.0 + math.exp(-steepness * x))


@register('linear_ramp')
def linear_ramp(step: int, total: int, start: float, end: float) -> float:
    """
    Supervised-to-distillation ramp: a(t) = start + (end - start) * min(t / T, 1).

    A linear curriculum of the KD mixing weight (Bengio et al., ICML 2009); no single paper.
    """
    return start + (end - start) * min(step / max(total, 1), 1.0)


@register('dann_reversal')
def dann_reversal(step: int, total: int, gamma: float = 10.0) -> float:
    """
    Gradient-reversal coefficient lambda(p) = 2 / (1 + exp(-gamma p)) - 1, p = step / total.

    0 at the start, where the domain classifier is still noise, towards 1 at the end (Ganin &
    Lempitsky, 'Unsupervised Domain Adaptation by Backpropagation', ICML 2015, gamma = 10).
    """
    progress = step / max(1, total)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


@register('modality_dropout')
def modality_dropout(mask: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """
    Drop each available modality with probability p, keeping at least one (ModDrop).

    kept = mask AND (u >= p), u ~ U(0, 1) per window and modality; a window left with none
    keeps one of its available modalities at random (Neverova et al., 'ModDrop', IEEE TPAMI
    2016). Rows with nothing available stay empty.
    """
    if p <= 0:
        return mask.copy()
    kept = mask & (rng.random(mask.shape) >= p)
    for row in np.flatnonzero(~kept.any(axis=1) & mask.any(axis=1)):
        kept[row, rng.choice(np.flatnonzero(mask[row]))] = True
    return kept


@register('convex_mix')
def convex_mix(x_a, x_b, lam, noise: float = 0.0, generator=None):
    """
    Convex combination plus Gaussian noise: x = lam * x_a + (1 - lam) * x_b + noise * eps.

    The source design's 'superposition sampling' is this mixup-style augmentation (Zhang et
    al., ICLR 2018) with additive noise; lam broadcasts over the trailing dimensions.
    """
    lam = torch.as_tensor(lam, dtype=x_a.dtype).reshape((-1,) + (1,) * (x_a.dim() - 1))
    mixed = lam * x_a + (1.0 - lam) * x_b
    if noise > 0:
        mixed = mixed + noise * torch.randn(mixed.shape, generator=generator,
                                            dtype=mixed.dtype)
    return mixed
