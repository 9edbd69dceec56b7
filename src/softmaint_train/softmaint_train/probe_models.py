"""
The observability probes' networks (models only; observability.py trains and scores them).

    PrivilegedProbe  MLP over the privileged physics columns
    SensorProbe      per-frame CNN on the camera and dilated temporal convolutions on each
                     vector modality, pooled over time (mean and max), into an MLP
Both end in Heads: one output per task (class logits; one urgency value) from one hidden layer.
"""
from typing import Dict, Optional

import torch
from torch import nn

CAMERA = 'camera'          # the frames' input name (softmaint_core.spec.MODALITIES)


class Heads(nn.Module):
    """MLP head with one linear output per task."""

    def __init__(self, features: int, outputs: Dict[str, int], hidden: int = 64):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in outputs.items()})

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Logits of every task."""
        h = self.trunk(x)
        return {k: head(h) for k, head in self.out.items()}


class PrivilegedProbe(nn.Module):
    """MLP (two hidden layers) over the standardised privileged columns."""

    def __init__(self, columns: int, outputs: Dict[str, int], hidden: int = 64):
        super().__init__()
        self.heads = Heads(columns, outputs, hidden)

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Logits from batch['privileged'] [B, P]."""
        return self.heads(batch['privileged'])


def _pool_time(h: torch.Tensor) -> torch.Tensor:
    """[B, T, F] -> [B, 2F]: mean and max over time."""
    return torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=-1)


class FrameEncoder(nn.Module):
    """Per-frame CNN: three 3x3 conv blocks, then mean and max over space."""

    def __init__(self, channels: int, width: int = 16):
        super().__init__()
        layers, c_in = [], channels
        for c_out, stride in ((width, 2), (2 * width, 2), (2 * width, 1)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.features = 4 * width

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] normalised -> [B, T, features]."""
        b, t = frames.shape[:2]
        h = self.net(frames.flatten(0, 1)).flatten(2)
        return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1).view(b, t, -1)


class SeriesEncoder(nn.Module):
    """Dilated 1-D temporal conv over one vector modality [B, T, D]."""

    def __init__(self, channels: int, width: int = 32, dilations=(1, 2, 4)):
        super().__init__()
        layers, c_in = [], channels
        for d in dilations:
            layers += [nn.Conv1d(c_in, width, 3, padding=d, dilation=d), nn.ReLU()]
            c_in = width
        self.net = nn.Sequential(*layers)
        self.features = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, 2 width]."""
        return _pool_time(self.net(x.transpose(1, 2)).transpose(1, 2))


class SensorProbe(nn.Module):
    """
    Camera CNN + per-modality temporal convs, pooled over time, into an MLP head.

    Each branch's features are layer-normalised before they are concatenated, and dropped out
    in training, so that no single modality (in practice the camera) dominates the head.
    """

    def __init__(self, series: Dict[str, int], camera_channels: Optional[int],
                 camera_stats, outputs: Dict[str, int], hidden: int = 128,
                 dropout: float = 0.3):
        super().__init__()
        self.series = nn.ModuleDict({k: SeriesEncoder(d) for k, d in series.items()})
        widths = [m.features for m in self.series.values()]
        self.camera = None
        if camera_channels:
            self.camera = FrameEncoder(camera_channels)
            widths.append(2 * self.camera.features)
            mean, std = (torch.as_tensor(s).view(1, 1, -1, 1, 1) for s in camera_stats)
            self.register_buffer('cam_mean', mean * 255.0)
            self.register_buffer('cam_std', std * 255.0)
        self.norms = nn.ModuleList(nn.LayerNorm(w) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(sum(widths), outputs, hidden)

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Logits from the sensor tensors of a batch (camera as uint8)."""
        parts = [enc(batch[k]) for k, enc in self.series.items()]
        if self.camera is not None:
            frames = (batch[CAMERA].float() - self.cam_mean) / self.cam_std
            parts.append(_pool_time(self.camera(frames)))
        parts = [norm(p) for norm, p in zip(self.norms, parts)]
        return self.heads(self.dropout(torch.cat(parts, dim=-1)))
