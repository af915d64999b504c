"""The seed network of the poster: three 3x3x3 convolution blocks and two dense layers.

The flatten size is computed from the input grid, so one class serves the full 132x175x48
studyforrest grid (about 139 M parameters, nearly all in the first dense layer) and a 22x29x8 demo
grid alike. Layers are named (``block1``..``block3``, ``fc1``, ``fc2``) so saliency and embedding
hooks can attach to them by name.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from emocore.errors import ConfigError

__all__ = ["SeedCNN", "pooled_shape"]


def pooled_shape(in_shape: Sequence[int], n_pools: int = 2) -> tuple[int, ...]:
    """Spatial shape after ``n_pools`` 2x2x2 max-pooling steps (floor division, as PyTorch does)."""
    shape = tuple(int(s) for s in in_shape)
    for _ in range(n_pools):
        shape = tuple(s // 2 for s in shape)
    return shape


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv3d(c_in, c_out, kernel_size=3, padding=1)),
        ("bn", nn.BatchNorm3d(c_out)),
        ("relu", nn.ReLU(inplace=True)),
    ]
    if pool:
        layers.append(("pool", nn.MaxPool3d(2)))
    return nn.Sequential(OrderedDict(layers))


class SeedCNN(nn.Module):
    """3-D CNN mapping one volume (batch, 1, x, y, z) to class logits (batch, n_classes).

    Parameters
    ----------
    in_shape
        Spatial shape (x, y, z) of the input volumes; each side must be at least 4 voxels.
    n_classes
        Number of output classes (5 emotions, or 6 with NONE).
    widths
        Channels of the three convolution blocks (the poster's 16/32/64 by default).
    hidden
        Width of the first dense layer.
    dropout
        Dropout before the last layer (0 = none, as in the poster).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int = 5,
        *,
        widths: Sequence[int] = (16, 32, 64),
        hidden: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3 or min(in_shape) < 4:
            raise ConfigError(
                f"in_shape must be three sides of at least 4 voxels (x, y, z); got {in_shape}"
            )
        if len(widths) != 3 or min(widths) < 1:
            raise ConfigError(f"widths must be three positive channel counts; got {tuple(widths)}")
        if n_classes < 2:
            raise ConfigError(f"n_classes must be at least 2; got {n_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {dropout}")
        self.in_shape = in_shape
        self.n_classes = n_classes
        w1, w2, w3 = (int(w) for w in widths)
        self.block1 = _block(1, w1, pool=True)
        self.block2 = _block(w1, w2, pool=True)
        self.block3 = _block(w2, w3, pool=False)
        flat = w3 * math.prod(pooled_shape(in_shape))
        self.flatten = nn.Flatten()
        self.fc1 = nn.Sequential(
            OrderedDict([("linear", nn.Linear(flat, hidden)), ("relu", nn.ReLU(inplace=True))])
        )
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the first dense layer (the embedding shown on the Representations page)."""
        return self.fc1(self.flatten(self.block3(self.block2(self.block1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if tuple(x.shape[2:]) != self.in_shape:
            raise ConfigError(
                f"input volumes are {tuple(x.shape[2:])} but the model was built for "
                f"{self.in_shape}; use a model trained on this grid"
            )
        return self.fc2(self.dropout(self.features(x)))
