"""Where the network looks: saliency maps, hidden-layer embeddings, and a check against truth.

* :func:`integrated_gradients` attributes a class score to every input voxel (on the input grid).
* :func:`ig_completeness` measures how far those attributions are from summing to the change in
  the class score (the completeness axiom); :func:`integrated_gradients_converged` doubles the
  steps until that relative gap is below a tolerance.
* :func:`grad_cam` weights the feature maps of a *named* layer (``block3`` by default) by their
  pooled gradients and upsamples the map to the input grid; hooks are attached for the call only.
* :func:`emotion_saliency` averages absolute attributions over the volumes of each emotion;
  :func:`emotion_saliency_checked` does the same with converged integrated gradients and says
  how many steps each map took and how complete its attributions are.
* :func:`describe_method` says what such a map holds (method, steps, baseline, units), for the
  JSON sidecar written next to it.
* :func:`saliency_auc` scores a map against a planted ground-truth pattern (ROC AUC over brain
  voxels; 0.5 = no better than chance).
* :func:`embeddings` returns the first dense layer's output for PCA/UMAP and cluster quality.

Only torch and numpy are needed here; NIfTI writing imports nibabel when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.device import choose_device
from emocore.errors import ConfigError, check_choice
from emocore.models.cnn3d import SeedCNN

__all__ = [
    "integrated_gradients",
    "ig_completeness",
    "integrated_gradients_converged",
    "IGResult",
    "emotion_saliency_checked",
    "MapCheck",
    "IG_TOLERANCE",
    "IG_MAX_STEPS",
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
#: Largest relative completeness gap :func:`integrated_gradients_converged` accepts by default.
IG_TOLERANCE = 0.05
#: Most steps :func:`integrated_gradients_converged` tries (8 -> 16 -> 32 -> 64 -> 128).
IG_MAX_STEPS = 128
#: A class-score change smaller than this (logits) makes the relative gap meaningless: NaN.
_MIN_SCORE_CHANGE = 1e-6
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


def ig_completeness(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, attributions: torch.Tensor
) -> torch.Tensor:
    """Relative completeness gap of integrated-gradients attributions, one value per volume (b,).

    Integrated gradients satisfy *completeness* (Sundararajan, Taly & Yan 2017, "Axiomatic
    attribution for deep networks", ICML, Proposition 1): the attributions of a volume sum to
    ``f(x) - f(baseline)``, the change of the explained class logit from the all-zero baseline to
    the volume. A finite Riemann sum only approximates the path integral, so the gap
    ``|sum(attributions) - (f(x) - f(0))| / |f(x) - f(0)|`` measures the discretisation error
    (0 = exact). Where the logit barely changes (``|f(x) - f(0)| < 1e-6``) the ratio says
    nothing and is NaN.
    """
    if attributions.shape != x.shape:
        raise ConfigError(
            f"attributions {tuple(attributions.shape)} and volumes {tuple(x.shape)} differ in shape"
        )
    model.eval()
    xf = x.float()
    t = target.view(-1, 1)
    with torch.no_grad():
        change = (
            model(xf.unsqueeze(1)).gather(1, t)
            - model(torch.zeros_like(xf).unsqueeze(1)).gather(1, t)
        )[:, 0].double()
    total = attributions.detach().flatten(1).double().sum(1)
    gap = (total - change).abs() / change.abs()
    return torch.where(change.abs() < _MIN_SCORE_CHANGE, torch.full_like(gap, float("nan")), gap)


@dataclass(frozen=True)
class IGResult:
    """Integrated gradients and how complete they are.

    ``attributions`` (b, x, y, z) from ``steps`` midpoint steps; ``delta`` (b,) the relative
    completeness gap of each volume (:func:`ig_completeness`, NaN where undefined);
    ``converged`` whether the largest defined gap is at most the tolerance asked for.
    """

    attributions: torch.Tensor
    steps: int
    delta: torch.Tensor
    converged: bool


def _worst(delta: torch.Tensor) -> float:
    """Largest defined gap; NaN when none is defined (no volume's logit moved)."""
    d = delta[~torch.isnan(delta)]
    return float(d.max()) if d.numel() else float("nan")


def _check_steps(tolerance: float | None, steps: int, max_steps: int) -> None:
    if tolerance is not None and not tolerance > 0:
        raise ConfigError(f"'tolerance' must be a positive number; {tolerance!r} was provided")
    if not 1 <= steps <= max_steps:
        raise ConfigError(
            f"'steps' must be between 1 and 'max_steps' ({max_steps}); {steps!r} was provided"
        )


def integrated_gradients_converged(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    tolerance: float = IG_TOLERANCE,
    steps: int = IG_STEPS,
    max_steps: int = IG_MAX_STEPS,
) -> IGResult:
    """Integrated gradients with as many steps as completeness asks for.

    Starts at ``steps`` and doubles them (8 -> 16 -> ...) until every volume's relative
    completeness gap (:func:`ig_completeness`) is at most ``tolerance`` or the next doubling
    would pass ``max_steps``; volumes whose gap is undefined (NaN) do not hold the loop up.
    Sundararajan et al. (2017, section 3) suggest checking completeness this way and raising the
    steps until the sum is within 5 % of the score change, hence the default tolerance.
    """
    _check_steps(tolerance, steps, max_steps)
    while True:
        attributions = integrated_gradients(model, x, target, steps=steps)
        delta = ig_completeness(model, x, target, attributions)
        worst = _worst(delta)
        done = not worst > tolerance  # NaN (nothing measurable) counts as done
        if done or steps * 2 > max_steps:
            return IGResult(attributions, steps, delta, done)
        steps *= 2


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
    steps: int = IG_STEPS,
) -> dict[str, np.ndarray]:
    """Mean absolute saliency per class over (up to ``max_per_class``) volumes of that class.

    ``target="true"`` explains the true class of each volume; ``"pred"`` the predicted one.
    ``steps`` are the integrated-gradients midpoint steps (ignored by Grad-CAM).
    """
    check_choice("method", method, tuple(METHODS))
    check_choice("target", target, ("true", "pred"))
    dev = choose_device(device)
    model = model.to(dev).eval()
    maps: dict[str, np.ndarray] = {}
    for k, idx in _explained_volumes(source, len(classes), max_per_class, seed).items():
        acc = torch.zeros(source.shape, device=dev)
        for x, t in _batches(model, source, idx, k, target, batch_size, dev):
            sal = (
                integrated_gradients(model, x, t, steps=steps)
                if method == "integrated-gradients"
                else grad_cam(model, x, t)
            )
            acc += sal.abs().sum(0)
        maps[classes[k]] = (acc / len(idx)).cpu().numpy()
    return maps


def _explained_volumes(
    source: VolumeSource, n_classes: int, max_per_class: int, seed: int
) -> dict[int, np.ndarray]:
    """Positions of the volumes each class's map averages (a seeded sample of at most
    ``max_per_class``); the same arguments always pick the same volumes."""
    rng = np.random.default_rng(seed)
    y = source.y.numpy()
    chosen: dict[int, np.ndarray] = {}
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        if len(idx) == 0:
            continue
        if len(idx) > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        chosen[k] = idx
    return chosen


def _batches(model, source, idx, k, target, batch_size, dev):
    """(volumes, explained class) batches of the positions ``idx`` on ``dev``."""
    for a in range(0, len(idx), batch_size):
        x = source.volumes(idx[a : a + batch_size]).to(dev).float()
        if target == "true":
            t = torch.full((len(x),), k, device=dev, dtype=torch.long)
        else:
            with torch.no_grad():
                t = model(x.unsqueeze(1)).argmax(1)
        yield x, t


@dataclass(frozen=True)
class MapCheck:
    """How one emotion's integrated-gradients map of :func:`emotion_saliency_checked` was made.

    ``steps``: midpoint steps every volume of the map was integrated with; ``delta_mean`` and
    ``delta_max``: mean and largest relative completeness gap over the map's volumes
    (:func:`ig_completeness`; NaN where no volume's logit moved); ``converged``: whether
    ``delta_max`` is within the tolerance (always True when no tolerance was asked for);
    ``n_volumes``: how many volumes the map averages.
    """

    steps: int
    delta_mean: float
    delta_max: float
    converged: bool
    n_volumes: int


def emotion_saliency_checked(
    model: nn.Module,
    source: VolumeSource,
    classes: Sequence[str],
    *,
    target: str = "true",
    max_per_class: int = 64,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
    tolerance: float | None = IG_TOLERANCE,
    steps: int | Mapping[str, int] = IG_STEPS,
    max_steps: int = IG_MAX_STEPS,
    rule: str = "mean",
) -> tuple[dict[str, np.ndarray], dict[str, MapCheck]]:
    """:func:`emotion_saliency` (integrated gradients) with completeness-checked step counts.

    Each emotion's map is computed with ``steps`` midpoint steps (an int, or one per emotion);
    while the map's relative completeness gap exceeds ``tolerance`` the steps double,
    up to ``max_steps``, and the *whole* map is recomputed, so every volume of a map shares one
    step count. ``tolerance=None`` keeps the given steps and only measures the gap (as for the
    randomised model of :mod:`emocore.saliency_checks`, which must use the trained map's steps).
    The volumes are those :func:`emotion_saliency` picks with the same ``seed``; with
    ``tolerance=None`` and ``steps=IG_STEPS`` the maps equal its maps. Returns the maps and a
    :class:`MapCheck` per emotion.

    ``rule`` says which gap must be within ``tolerance``: ``"mean"`` (default) the mean over the
    map's volumes, since the map is their mean; ``"max"`` the worst volume's, stricter and
    costlier (a volume whose score barely moves can have a large relative gap).
    """
    check_choice("rule", rule, ("mean", "max"))
    check_choice("target", target, ("true", "pred"))
    dev = choose_device(device)
    model = model.to(dev).eval()
    maps: dict[str, np.ndarray] = {}
    checks: dict[str, MapCheck] = {}
    for k, idx in _explained_volumes(source, len(classes), max_per_class, seed).items():
        name = classes[k]
        n = int(steps[name]) if isinstance(steps, Mapping) else int(steps)
        _check_steps(tolerance, n, max_steps)
        while True:
            acc = torch.zeros(source.shape, device=dev)
            deltas = []
            for x, t in _batches(model, source, idx, k, target, batch_size, dev):
                sal = integrated_gradients(model, x, t, steps=n)
                deltas.append(ig_completeness(model, x, t, sal))
                acc += sal.abs().sum(0)
            delta = torch.cat(deltas)
            worst = _worst(delta)
            defined = delta[~torch.isnan(delta)]
            mean = float(defined.mean()) if defined.numel() else float("nan")
            gap = worst if rule == "max" else mean
            ok = tolerance is None or not gap > tolerance
            if ok or n * 2 > max_steps:
                break
            n *= 2
        maps[name] = (acc / len(idx)).cpu().numpy()
        checks[name] = MapCheck(
            steps=n,
            delta_mean=mean,
            delta_max=worst,
            converged=ok,
            n_volumes=len(idx),
        )
    return maps, checks


def describe_method(
    method: str = "integrated-gradients", *, target: str = "true", steps: int = IG_STEPS
) -> dict[str, Any]:
    """What a map of :func:`emotion_saliency` with these options holds, as BIDS-style keys.

    ``steps``: the integrated-gradients steps the map was made with (a converged map of
    :func:`emotion_saliency_checked` may have used more than :data:`IG_STEPS`).

    ``Method``, ``Steps`` and ``Baseline`` (integrated gradients) or ``Layer`` (Grad-CAM),
    ``Target`` (which class is explained) and ``Units``: exactly what one voxel's number is.
    """
    check_choice("method", method, tuple(METHODS))
    check_choice("target", target, ("true", "pred"))
    explained = "its true emotion" if target == "true" else "the emotion the model predicted"
    if method == "integrated-gradients":
        return {
            "Method": method,
            "Steps": steps,
            "Baseline": "all-zero volume (the mean of every z-scored run)",
            "Target": explained,
            "Units": (
                "logit (the model's pre-softmax class score): per voxel, the mean over the "
                "explained volumes of the absolute integrated-gradients attribution, i.e. of "
                "the voxel's share of the change in the class logit from the all-zero baseline "
                f"to the volume (midpoint rule, {steps} steps); non-negative, not normalised"
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
    model: SeedCNN,
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
