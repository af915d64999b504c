"""Where the network looks: saliency maps, hidden-layer embeddings, and a check against truth.

* :func:`integrated_gradients` attributes a class score to every input voxel (on the input grid).
* :func:`grad_cam` weights the feature maps of a *named* layer (``block3`` by default) by their
  pooled gradients and upsamples the map to the input grid; hooks are attached for the call only.
* :func:`emotion_saliency` averages absolute attributions over the volumes of each emotion.
* :func:`describe_method` says what such a map holds (method, steps, baseline, units), for the
  JSON sidecar written next to it.
* :func:`saliency_auc` scores a map against a planted ground-truth pattern (ROC AUC over brain
  voxels; 0.5 = no better than chance).
* :func:`embeddings` returns the first dense layer's output for PCA/UMAP and cluster quality.

Only torch and numpy are needed here; NIfTI writing imports nibabel when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.device import choose_device
from emocore.errors import ConfigError

__all__ = [
    "integrated_gradients",
    "grad_cam",
    "emotion_saliency",
    "describe_method",
    "IG_STEPS",
    "GRAD_CAM_LAYER",
    "saliency_auc",
    "embeddings",
    "save_nifti",
]

METHODS = ("integrated-gradients", "grad-cam")
#: Riemann steps (midpoint rule) of :func:`integrated_gradients` when none are given.
IG_STEPS = 8
#: The layer :func:`grad_cam` reads when none is given.
GRAD_CAM_LAYER = "block3"


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, steps: int = IG_STEPS
) -> torch.Tensor:
    """Integrated gradients from a zero baseline (the mean of a z-scored run), (b, x, y, z)."""
    model.eval()
    x = x.float()
    total = torch.zeros_like(x)
    for alpha in (torch.arange(steps, dtype=torch.float32, device=x.device) + 0.5) / steps:
        xi = (alpha * x).detach().requires_grad_(True)
        score = model(xi.unsqueeze(1)).gather(1, target.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, xi)
        total += grad
    return x * total / steps


def grad_cam(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, layer: str = GRAD_CAM_LAYER
) -> torch.Tensor:
    """Grad-CAM on the named layer, upsampled (trilinear) to the input grid, (b, x, y, z)."""
    module = dict(model.named_modules()).get(layer)
    if module is None:
        names = [n for n, _ in model.named_modules() if n]
        raise ConfigError(f"layer '{layer}' is not in the model; choose one of {names}")
    store: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    try:
        model.eval()
        logits = model(x.float().unsqueeze(1))
        act = store["act"]
        (grad,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), act)
    finally:
        handle.remove()
    weights = grad.mean(dim=(2, 3, 4), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=tuple(x.shape[1:]), mode="trilinear", align_corners=False)[
        :, 0
    ].detach()


def emotion_saliency(
    model: nn.Module,
    source: VolumeSource,
    classes: Sequence[str],
    *,
    method: str = "integrated-gradients",
    target: str = "true",
    max_per_class: int = 64,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Mean absolute saliency per class over (up to ``max_per_class``) volumes of that class.

    ``target="true"`` explains the true class of each volume; ``"pred"`` the predicted one.
    """
    if method not in METHODS:
        raise ConfigError(f"'method' must be one of {set(METHODS)}; '{method}' was provided")
    if target not in ("true", "pred"):
        raise ConfigError(f"'target' must be 'true' or 'pred'; '{target}' was provided")
    dev = choose_device(device)
    model = model.to(dev).eval()
    rng = np.random.default_rng(seed)
    y = source.y.numpy()
    maps: dict[str, np.ndarray] = {}
    for k, name in enumerate(classes):
        idx = np.flatnonzero(y == k)
        if len(idx) == 0:
            continue
        if len(idx) > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        acc = torch.zeros(source.shape, device=dev)
        for a in range(0, len(idx), batch_size):
            x = source.volumes(idx[a : a + batch_size]).to(dev).float()
            if target == "true":
                t = torch.full((len(x),), k, device=dev, dtype=torch.long)
            else:
                with torch.no_grad():
                    t = model(x.unsqueeze(1)).argmax(1)
            sal = (
                integrated_gradients(model, x, t)
                if method == "integrated-gradients"
                else grad_cam(model, x, t)
            )
            acc += sal.abs().sum(0)
        maps[name] = (acc / len(idx)).cpu().numpy()
    return maps


def describe_method(
    method: str = "integrated-gradients", *, target: str = "true"
) -> dict[str, Any]:
    """What a map of :func:`emotion_saliency` with these options holds, as BIDS-style keys.

    ``Method``, ``Steps`` and ``Baseline`` (integrated gradients) or ``Layer`` (Grad-CAM),
    ``Target`` (which class is explained) and ``Units``: exactly what one voxel's number is.
    """
    if method not in METHODS:
        raise ConfigError(f"'method' must be one of {set(METHODS)}; '{method}' was provided")
    if target not in ("true", "pred"):
        raise ConfigError(f"'target' must be 'true' or 'pred'; '{target}' was provided")
    explained = "its true emotion" if target == "true" else "the emotion the model predicted"
    if method == "integrated-gradients":
        return {
            "Method": method,
            "Steps": IG_STEPS,
            "Baseline": "all-zero volume (the mean of every z-scored run)",
            "Target": explained,
            "Units": (
                "logit (the model's pre-softmax class score): per voxel, the mean over the "
                "explained volumes of the absolute integrated-gradients attribution, i.e. of "
                "the voxel's share of the change in the class logit from the all-zero baseline "
                f"to the volume (midpoint rule, {IG_STEPS} steps); non-negative, not normalised"
            ),
        }
    return {
        "Method": method,
        "Layer": GRAD_CAM_LAYER,
        "Target": explained,
        "Units": (
            "arbitrary: per voxel, the mean over the explained volumes of the Grad-CAM value "
            f"(ReLU of the {GRAD_CAM_LAYER} feature maps weighted by their spatially averaged "
            "gradients of the class logit, upsampled trilinearly to the input grid); "
            "non-negative, comparable only within one model"
        ),
    }


def saliency_auc(
    saliency: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> float:
    """ROC AUC of |saliency| for telling apart voxels where ``truth`` exceeds ``threshold`` x its max."""
    from sklearn.metrics import roc_auc_score

    if saliency.shape != truth.shape:
        raise ConfigError(
            f"saliency {saliency.shape} and ground truth {truth.shape} are on different grids"
        )
    keep = np.ones(truth.shape, bool) if mask is None else mask.astype(bool)
    t = np.abs(truth[keep])
    positive = t > threshold * t.max() if t.max() > 0 else np.zeros_like(t, bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.abs(saliency[keep])))


@torch.no_grad()
def embeddings(
    model: nn.Module,
    source: VolumeSource,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Output of the first dense layer (n, hidden) for every row of ``source``."""
    dev = choose_device(device)
    model = model.to(dev).eval()
    out = [
        model.features(x.to(dev).float().unsqueeze(1)).cpu()
        for x, _, _ in source.batches(batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def save_nifti(volume: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write a 3-D map as NIfTI (float32) atomically."""
    import nibabel as nib

    from emocore._io import atomic_write_bytes

    img = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), np.asarray(affine))
    path = Path(path)
    atomic_write_bytes(path, img.to_bytes() if path.suffix == ".nii" else _gz(img))
    return path


def _gz(img) -> bytes:
    import gzip

    return gzip.compress(img.to_bytes(), compresslevel=1)
