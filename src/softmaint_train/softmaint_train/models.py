"""
Models: the multi-modal teacher and the compact field student (modules only).

Both share one design. Each modality is encoded step by step into tokens of width d (a small
strided CNN per camera frame; for tactile/proprio/environment an MLP per step or, with
model.vector_encoder 'temporal_conv', dilated convolutions over the steps), tagged with a
learned modality embedding and a learned time embedding. A learned summary token that is always
present is prepended, and a pre-norm transformer attends jointly over all tokens: cross-modal
attention fusion and temporal attention over the window in one, never plain concatenation.
Tokens of unavailable modalities get an additive attention bias of MASK_BIAS, so any subset of
modalities works and no attention row is ever fully masked (the summary token is always there).
The summary token's output is the fused feature h.

Per-modality feature vectors (mean of a modality's step encodings, projected to `embedding`)
serve as the targets of the student's reconstruction head: from h, computed without the missing
modalities, the student predicts the features of every modality ("sees what it cannot sense").
"""
from dataclasses import dataclass
import math
from typing import Dict, Optional, Sequence, Tuple

from softmaint_core.spec import InputSpec, MODALITIES
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
import torch
from torch import nn
import torch.nn.functional as F

from .config import ModelConfig
from .losses import log_rul_from_urgency, urgency_from_log_rul

MASK_BIAS = -1.0e4      # finite, so even a fully masked row stays NaN-free
FRAME_NORM_EPS = 1e-5   # a blank (missing) frame stays zero instead of dividing by 0
N_FATIGUE = len(FATIGUE_LEVELS)
N_DAMAGE = len(DAMAGE_TYPES)


@dataclass(frozen=True)
class ModalityShape:
    """Shape of one modality's window, as the model needs it."""

    name: str
    steps: int
    features: Tuple[int, ...]


def shapes_from_spec(spec: InputSpec) -> Tuple[ModalityShape, ...]:
    """Modality shapes in mask order."""
    return tuple(ModalityShape(m.name, m.steps, tuple(m.features)) for m in spec.modalities)


class FrameCNN(nn.Module):
    """
    Strided 3x3 convolutions over each frame, then a linear map to d.

    With stem_patch > 0 the first layer is a patch embedding (kernel = stride = stem_patch),
    which makes large frames (the teacher's 64x64) cheap. pool 'flatten' keeps the final
    feature map's layout (where the thin arm is in the frame is its pose; a global average
    pool throws that away), 'mean' averages it out. frame_norm standardises every frame per
    channel first, so a brightness change of the scene (lighting) leaves the input unchanged.
    """

    def __init__(self, features: Sequence[int], channels: Sequence[int], d_model: int,
                 stem_patch: int = 0, pool: str = 'flatten', frame_norm: bool = True):
        super().__init__()
        layers, prev = [], features[0]
        for i, ch in enumerate(channels):
            if i == 0 and stem_patch > 0:
                layers += [nn.Conv2d(prev, ch, stem_patch, stride=stem_patch), nn.GELU()]
            else:
                layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.GELU()]
            prev = ch
        self.convs = nn.Sequential(*layers)
        self.pool = pool
        self.frame_norm = frame_norm
        if pool == 'flatten':
            with torch.no_grad():
                prev = self.convs(torch.zeros((1,) + tuple(features))).numel()
        self.out = nn.Linear(prev, d_model)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Map [B, T, C, H, W] to [B, T, d]."""
        b, t = frames.shape[0], frames.shape[1]
        x = frames.reshape((b * t,) + tuple(frames.shape[2:]))
        if self.frame_norm:
            x = x - x.mean(dim=(2, 3), keepdim=True)
            x = x / torch.sqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + FRAME_NORM_EPS)
        x = self.convs(x)
        x = x.flatten(1) if self.pool == 'flatten' else x.mean(dim=(2, 3))
        return self.out(x).reshape(b, t, -1)


class StepMLP(nn.Module):
    """Two-layer MLP applied to every time step of a vector modality."""

    def __init__(self, features: int, d_model: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, d_model), nn.GELU(),
                                 nn.Linear(d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [B, T, D] to [B, T, d]."""
        return self.net(x)


class TemporalConv(nn.Module):
    """
    Dilated 1-D convolutions over the steps of a vector modality, with residuals.

    A per-step MLP sees one instant; damage shows in how a signal evolves over the window (a
    lagging response, a drifting offset). Three 'same'-padded layers (dilations 1, 2, 4) give
    every token a receptive field of 15 steps (temporal convolutional networks: Bai, Kolter &
    Koltun 2018), and the tokens keep their time positions for the attention.
    """

    def __init__(self, features: int, d_model: int, dilations: Sequence[int] = (1, 2, 4)):
        super().__init__()
        self.inp = nn.Linear(features, d_model)
        self.convs = nn.ModuleList(nn.Conv1d(d_model, d_model, 3, padding=d, dilation=d)
                                   for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [B, T, D] to [B, T, d]."""
        h = self.inp(x).transpose(1, 2)
        for conv in self.convs:
            h = h + F.gelu(conv(h))
        return h.transpose(1, 2)


class RowDropout(nn.Module):
    """
    Dropout whose mask of a row depends only on the row's place in the whole batch.

    The training loop sets `generator` (seeded by seed and step), `rows` and `total` before
    each forward: the mask of the whole global batch is drawn and this process's rows kept, so
    a batch split over data-parallel processes is dropped exactly as in one process. Without a
    generator it is plain dropout; in eval mode (and in the exported graph) the identity.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: Optional[torch.Generator] = None
        self.rows = slice(None)
        self.total = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero each element with probability p and rescale the rest by 1 / (1 - p)."""
        if not self.training or self.p == 0:
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        keep = torch.rand((self.total,) + tuple(x.shape[1:]),
                          generator=self.generator)[self.rows] >= self.p
        return x * keep.to(x.device, x.dtype) / (1.0 - self.p)


class Block(nn.Module):
    """Pre-norm transformer block with explicit (ONNX-friendly) masked attention."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(),
                                 nn.Linear(2 * d_model, d_model))
        self.drop = RowDropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attend over tokens x [B, N, d]; bias [B, N] is added to every query's scores."""
        b, n, d = x.shape
        dh = d // self.heads
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q = q.reshape(b, n, self.heads, dh).transpose(1, 2)
        k = k.reshape(b, n, self.heads, dh).transpose(1, 2)
        v = v.reshape(b, n, self.heads, dh).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh) + bias[:, None, None, :]
        attn = torch.softmax(scores, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(out))
        return x + self.drop(self.mlp(self.norm2(x)))


class MultiModalEncoder(nn.Module):
    """Tokens of every modality + summary token, fused by masked attention."""

    def __init__(self, shapes: Sequence[ModalityShape], cfg: ModelConfig):
        super().__init__()
        self.names = tuple(s.name for s in shapes)
        self.steps = tuple(s.steps for s in shapes)
        d = cfg.d_model
        self.encoders = nn.ModuleDict()
        for s in shapes:
            if len(s.features) == 3:
                self.encoders[s.name] = FrameCNN(s.features, cfg.cnn_channels, d,
                                                 cfg.stem_patch, cfg.cnn_pool, cfg.frame_norm)
            elif cfg.vector_encoder == 'temporal_conv':
                self.encoders[s.name] = TemporalConv(s.features[0], d)
            else:
                self.encoders[s.name] = StepMLP(s.features[0], d)
        self.time = nn.ParameterDict({
            s.name: nn.Parameter(0.02 * torch.randn(s.steps, d)) for s in shapes})
        self.modality = nn.Parameter(0.02 * torch.randn(len(shapes), d))
        self.summary = nn.Parameter(0.02 * torch.randn(1, 1, d))
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.to_embedding = nn.Linear(d, cfg.embedding)

    def forward(self, inputs: Dict[str, torch.Tensor], mask: torch.Tensor):
        """
        Return (fused h [B, d], per-modality features [B, M, embedding]).

        `mask` [B, M] (1 = available) decides which tokens take part in the attention; the
        per-modality features are computed from the inputs regardless of the mask.
        """
        tokens, biases, feats = [], [], []
        b = mask.shape[0]
        for i, name in enumerate(self.names):
            enc = self.encoders[name](inputs[name])                     # [B, T, d]
            feats.append(self.to_embedding(enc.mean(dim=1)))
            tokens.append(enc + self.time[name][None] + self.modality[i][None, None])
            biases.append(((1.0 - mask[:, i:i + 1]) * MASK_BIAS).expand(b, self.steps[i]))
        x = torch.cat([self.summary.expand(b, 1, -1)] + tokens, dim=1)
        bias = torch.cat([torch.zeros_like(mask[:, :1])] + biases, dim=1)
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x[:, 0]), torch.stack(feats, dim=1)


class Heads(nn.Module):
    """
    Fatigue, damage and urgency from the fused feature.

    Urgency, by `urgency_head` (ModelConfig.urgency_head): 'log_rul' predicts
    z = log(RUL / horizon) / S (see losses.log_rul_loss: the degradation rates multiply, so log
    RUL is nearly additive in the inputs' effects) and urgency = clip(1 - exp(S z), 0, 1)
    follows in the graph; 'sigmoid' regresses urgency through a sigmoid.
    """

    def __init__(self, d_model: int, urgency_head: str = 'log_rul'):
        super().__init__()
        self.urgency_head = urgency_head
        self.trunk = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU())
        self.fatigue = nn.Linear(d_model, N_FATIGUE)
        self.damage = nn.Linear(d_model, N_DAMAGE)
        self.urgency = nn.Linear(d_model, 1)

    def forward(self, h: torch.Tensor):
        """Return (fatigue logits, damage logits, urgency in [0, 1], log-RUL z)."""
        x = self.trunk(h)
        out = self.urgency(x).squeeze(-1)
        if self.urgency_head == 'sigmoid':      # models made before the log-RUL head
            urgency = torch.sigmoid(out)
            return self.fatigue(x), self.damage(x), urgency, log_rul_from_urgency(urgency)
        return self.fatigue(x), self.damage(x), urgency_from_log_rul(out), out


class GradientReversal(torch.autograd.Function):
    """Identity forward, gradient times -scale backward (Ganin & Lempitsky, ICML 2015)."""

    @staticmethod
    def forward(ctx, x, scale: float):
        """Pass x through unchanged."""
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        """Reverse and scale the gradient."""
        return -ctx.scale * grad, None


class UnimodalHeads(nn.Module):
    """
    Fatigue and damage logits from each modality's own feature vector (training only).

    A fused model learns greedily from the modality that is easiest to fit (here proprio) and
    leaves the others' encoders untrained: modality imbalance (Wang, Tran & Feiszli, CVPR
    2020; Peng et al., CVPR 2022; C2KD, CVPR 2024). A classifier per modality on its own
    feature gives every encoder its own gradient, which the fusion can then use.
    Output [B, M, N_FATIGUE + N_DAMAGE].
    """

    def __init__(self, modalities: int, embedding: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(embedding, N_FATIGUE + N_DAMAGE)
                                   for _ in range(modalities))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Map per-modality features [B, M, E] to logits [B, M, C]."""
        return torch.stack([head(feats[:, i]) for i, head in enumerate(self.heads)], dim=1)


class Teacher(nn.Module):
    """Multi-modal teacher on the simulation (teacher) view, with a privileged-state head."""

    def __init__(self, shapes: Sequence[ModalityShape], cfg: ModelConfig, privileged: int,
                 unimodal: bool = True):
        super().__init__()
        self.encoder = MultiModalEncoder(shapes, cfg)
        self.heads = Heads(cfg.d_model, cfg.urgency_head)
        self.privileged = nn.Linear(cfg.d_model, max(privileged, 1))
        self.unimodal = UnimodalHeads(len(shapes), cfg.embedding) if unimodal else None

    def forward(self, inputs: Dict[str, torch.Tensor], mask: torch.Tensor):
        """Return a dict of logits, urgency, fused and per-modality features, privileged."""
        h, feats = self.encoder(inputs, mask)
        fatigue, damage, urgency, log_rul = self.heads(h)
        return {'fatigue': fatigue, 'damage': damage, 'urgency': urgency, 'log_rul': log_rul,
                'feature': h, 'modality_features': feats, 'privileged': self.privileged(h),
                **({'unimodal': self.unimodal(feats)} if self.unimodal is not None else {})}


class StudentMember(nn.Module):
    """One compact field student: encoder, heads, reconstruction of every modality."""

    def __init__(self, shapes: Sequence[ModalityShape], cfg: ModelConfig, teacher_dim: int,
                 lighting_bins: int, unimodal: bool = True):
        super().__init__()
        self.encoder = MultiModalEncoder(shapes, cfg)
        self.heads = Heads(cfg.d_model, cfg.urgency_head)
        self.n_modalities = len(shapes)
        self.embedding = cfg.embedding
        self.reconstruct = nn.Sequential(
            nn.Linear(cfg.d_model, 2 * cfg.d_model), nn.GELU(),
            nn.Linear(2 * cfg.d_model, len(shapes) * cfg.embedding))
        # Training-only heads (not exported): feature projection to the teacher's space, the
        # lighting discriminator behind gradient reversal and the per-modality classifiers.
        self.project = nn.Sequential(nn.Linear(cfg.d_model, teacher_dim), nn.GELU(),
                                     nn.Linear(teacher_dim, teacher_dim))
        self.discriminator = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(),
                                           nn.Linear(cfg.d_model, lighting_bins))
        self.unimodal = UnimodalHeads(len(shapes), cfg.embedding) if unimodal else None

    def forward(self, inputs, mask, reversal: float = 0.0):
        """Return the outputs of one member as a dict (see Student.forward)."""
        h, feats = self.encoder(inputs, mask)
        fatigue, damage, urgency, log_rul = self.heads(h)
        recon = self.reconstruct(h).reshape(h.shape[0], self.n_modalities, self.embedding)
        out = {'fatigue': fatigue, 'damage': damage, 'urgency': urgency, 'log_rul': log_rul,
               'reconstruction': recon, 'feature': h, 'modality_features': feats}
        if self.training:
            out['projection'] = self.project(h)
            out['lighting'] = self.discriminator(GradientReversal.apply(h, reversal))
            if self.unimodal is not None:
                out['unimodal'] = self.unimodal(feats)
        return out


class Student(nn.Module):
    """Deep ensemble of K student members in one module (and later one ONNX graph)."""

    def __init__(self, shapes: Sequence[ModalityShape], cfg: ModelConfig, members: int,
                 teacher_dim: int, lighting_bins: int = 3, unimodal: bool = True):
        super().__init__()
        self.members = nn.ModuleList(
            StudentMember(shapes, cfg, teacher_dim, lighting_bins, unimodal)
            for _ in range(members))

    def forward(self, inputs: Dict[str, torch.Tensor], mask: torch.Tensor,
                reversal: float = 0.0) -> Dict[str, torch.Tensor]:
        """Run every member; outputs stacked on axis 1: fatigue [B, K, 3], damage [B, K, 5]..."""
        outs = [m(inputs, mask, reversal) for m in self.members]
        return {key: torch.stack([o[key] for o in outs], dim=1) for key in outs[0]}


class OnnxStudent(nn.Module):
    """Export wrapper: positional inputs in spec order + mask, the four contract outputs."""

    def __init__(self, student: Student):
        super().__init__()
        self.student = student

    def forward(self, camera, tactile, proprio, environment, mask):
        """Run the ensemble; the argument names are the ONNX input names."""
        inputs = dict(zip(MODALITIES, (camera, tactile, proprio, environment)))
        out = self.student(inputs, mask)
        return out['fatigue'], out['damage'], out['urgency'], out['reconstruction']


def count_parameters(module: nn.Module) -> int:
    """Count the trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
