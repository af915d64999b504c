"""Where the network looks: saliency maps, hidden-layer embeddings, and a check against truth.

* :func:`smoothgrad` (the default map, :data:`DEFAULT_METHOD`) averages the plain input
  gradient of the class score over copies of the volume with Gaussian noise added (Smilkov et
  al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825); :func:`gradient`
  is the plain gradient itself (Simonyan et al. 2014).
* :func:`integrated_gradients` attributes a class score to every input voxel (on the input grid).
* :func:`ig_completeness` measures how far those attributions are from summing to the change in
  the class score (the completeness axiom); :func:`integrated_gradients_converged` doubles the
  steps until that relative gap is below a tolerance.
* :func:`grad_cam` weights the feature maps of a *named* layer (``block3`` by default) by their
  pooled gradients and upsamples the map to the input grid; hooks are attached for the call only.
* :func:`emotion_saliency` averages absolute attributions over the volumes of each emotion;
  :func:`volume_saliency` does the same and can keep each volume's map, and
  :func:`emotion_saliency_checked` uses converged integrated gradients and says how many steps
  each map took and how complete its attributions are.
* :func:`describe_method` says what such a map holds (method, steps, baseline, units), for the
  JSON sidecar written next to it.
* :func:`saliency_auc` scores a map against a planted ground-truth pattern (ROC AUC over brain
  voxels; 0.5 = no better than chance); :func:`input_magnitude` is the map of no model at all
  (mean |x| over the same volumes), the AUC a map must be read against.
* :func:`embeddings` returns the first dense layer's output for PCA/UMAP and cluster quality.

Why SmoothGrad is the default: integrated gradients multiply the gradient by the input, so
their map follows the volume itself; with re-drawn weights it still finds a planted pattern
(AUC 0.84-0.93 in the measurement of issue 21) and correlates with the trained model's map.
Gradient-based maps without that product change when the weights change (Adebayo et al. 2018).
README.md ("Explanations, checked") gives the numbers the choice rests on.

How an emotion's map pools its volumes: for the gradient family (SmoothGrad and the plain
gradient) it is the absolute value of the *signed* mean over the emotion's volumes, so a voxel
scores high when it pushes the emotion's score the same way in the emotion's volumes; for
integrated gradients and Grad-CAM it is the mean of the absolute values. Averaging absolute
gradients keeps the network's architecture in the map (edge voxels reach fewer units, whatever
the weights): on 10 x 12 x 8 grids, the median Spearman correlation between the maps of a
trained and a weight-randomised copy was 0.20 that way and 0.06 with the signed mean (24 maps,
8 seeded cohorts of sparse patterns). On two cohorts of planted blobs, the trained maps'
AUCs moved from 0.57-0.92 to 0.54-0.89 and the randomised copies' from 0.51-0.64 to 0.49-0.59,
so the mean trained-minus-randomised AUC stayed at 0.24. A voxel whose gradient changes sign
between volumes cancels out; the map does not show it.

The methods are written here with ``torch.autograd`` (a few lines each) rather than taken from
Captum: the maps need what Captum does not provide (per-emotion averaging over seeded volumes,
per-map step doubling on the completeness gap, noise drawn on the CPU so that a trained and a
weight-randomised model see the same noisy copies), and Captum would be one more dependency of
every installation for about thirty lines.

Only torch and numpy are needed here; NIfTI writing imports nibabel when called.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emocore._io import atomic_write_bytes
from emocore.data.dataset import VolumeSource
from emocore.device import choose_device
from emocore.errors import ConfigError, check_choice
from emocore.models.cnn3d import SeedCNN
from emocore.models.engine import fold_batchnorm

__all__ = [
    "DEFAULT_METHOD",
    "SIGNED_MEAN_METHODS",
    "pool_volumes",
    "pooling_words",
    "METHODS",
    "SMOOTHGRAD_NOISE",
    "SMOOTHGRAD_SAMPLES",
    "gradient",
    "smoothgrad",
    "attribute",
    "volume_saliency",
    "spread",
    "integrated_gradients",
    "ig_completeness",
    "integrated_gradients_converged",
    "IGResult",
    "emotion_saliency_checked",
    "EmotionMap",
    "MapCheck",
    "IG_TOLERANCE",
    "IG_MAX_STEPS",
    "grad_cam",
    "emotion_saliency",
    "describe_method",
    "IG_STEPS",
    "GRAD_CAM_LAYER",
    "saliency_auc",
    "planted_voxels",
    "input_magnitude",
    "embeddings",
    "save_nifti",
]

#: The attribution methods of :func:`emotion_saliency`, the default first.
METHODS = ("smoothgrad", "grad-cam", "integrated-gradients", "gradient")
#: The map a study makes unless told otherwise (chosen by measurement: see the module docstring).
DEFAULT_METHOD = "smoothgrad"
#: Noisy copies :func:`smoothgrad` averages per volume. Smilkov et al. (2017) see single-image
#: maps settle by about 50; a map here is also averaged over the emotion's volumes (16 in a
#: study), so a few copies suffice: on the demo cohort, 16-volume maps from 1, 2, 4 and 8 copies
#: rank voxels like a map from 32 (other noise) with Spearman 0.84-0.95, 0.90-0.96, 0.94-0.98
#: and 0.96-0.99. Four keep the demo within its time.
SMOOTHGRAD_SAMPLES = 4
#: Standard deviation of SmoothGrad's noise as a share of each volume's range (max - min);
#: Smilkov et al. (2017) found 10-20 % best.
SMOOTHGRAD_NOISE = 0.15
#: Methods whose emotion map is the absolute value of the signed mean over volumes (see the
#: module docstring); the others average absolute values.
SIGNED_MEAN_METHODS = ("smoothgrad", "gradient")
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


def gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient of the ``target`` class logit with respect to each input voxel, (b, x, y, z)."""
    model.eval()
    xi = x.float().detach().requires_grad_(True)
    score = model(xi.unsqueeze(1)).gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(score, xi)
    return grad.detach()


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """SmoothGrad of the plain gradient (Smilkov et al. 2017, eq. 3), (b, x, y, z).

    The mean of :func:`gradient` over ``samples`` copies of each volume with Gaussian noise of
    standard deviation ``noise`` x (the volume's max - min) added. The noise is drawn on the CPU
    from ``generator`` (one for the batch, one per volume, or a fresh unseeded one when None),
    so one seed gives the same noisy copies on every device and for every model.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"'samples' must be a whole number >= 1; {samples!r} was provided")
    if not 0 <= noise < np.inf:
        raise ConfigError(
            f"'noise' must be a share >= 0 of the volume's range; {noise!r} was provided"
        )
    x = x.float()
    span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, *([1] * (x.dim() - 1)))
    total = torch.zeros_like(x)
    if isinstance(generator, Sequence) and len(generator) != len(x):
        raise ConfigError(
            f"'generator' must be one generator or one per volume ({len(x)}); "
            f"{len(generator)} were provided"
        )
    for _ in range(samples):
        if isinstance(generator, Sequence):
            eps = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generator])
        else:
            eps = torch.randn(x.shape, generator=generator)
        total += gradient(model, x + noise * span * eps.to(x.device), target)
    return total / samples


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    method: str = DEFAULT_METHOD,
    steps: int = IG_STEPS,
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """The signed attribution of ``method`` for each volume of ``x``, on the input grid."""
    check_choice("method", method, METHODS)
    if method == "smoothgrad":
        return smoothgrad(model, x, target, samples=samples, noise=noise, generator=generator)
    if method == "gradient":
        return gradient(model, x, target)
    if method == "integrated-gradients":
        return integrated_gradients(model, x, target, steps=steps)
    return grad_cam(model, x, target)


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


@dataclass(frozen=True)
class MapCheck:
    """How one emotion's integrated-gradients map was made.

    ``steps``: midpoint steps every volume of the map was integrated with; ``delta_mean`` and
    ``delta_max``: mean and largest relative completeness gap over the map's volumes
    (:func:`ig_completeness`; NaN where no volume's logit moved); ``converged``: whether the
    gap the stopping rule reads is within the tolerance (always True when no tolerance was asked
    for); ``n_volumes``: how many volumes the map averages.
    """

    steps: int
    delta_mean: float
    delta_max: float
    converged: bool
    n_volumes: int


@dataclass(frozen=True)
class EmotionMap:
    """One emotion's map from :func:`volume_saliency`.

    ``mean`` (x, y, z): the map, :func:`pool_volumes` of the explained volumes' attributions;
    ``volumes`` (n, voxels): each volume's attribution at the voxels of the ``mask`` given (all
    voxels, flattened, without one), signed for :data:`SIGNED_MEAN_METHODS` and absolute for
    the others, so that ``pool_volumes(volumes)`` of any subset is that subset's map; None when
    they were not asked for;
    ``check``: steps and completeness for integrated gradients, None for the other methods.
    """

    mean: np.ndarray
    volumes: np.ndarray | None
    check: MapCheck | None


def pool_volumes(volumes: np.ndarray) -> np.ndarray:
    """The map of a set of per-volume attributions (volumes first, as
    :attr:`EmotionMap.volumes` keeps them): the absolute value of their mean. For the signed
    attributions of :data:`SIGNED_MEAN_METHODS` that is the signed mean's size; for absolute
    ones it is their mean."""
    return np.abs(np.asarray(volumes).mean(0))


def pooling_words(method: str) -> str:
    """How an emotion's ``method`` map pools its volumes, in words for descriptions."""
    if method in SIGNED_MEAN_METHODS:
        return f"the size of the mean signed {method}"
    return f"mean absolute {method}"


def _noise_generators(seed: int, positions: np.ndarray) -> list[torch.Generator]:
    """SmoothGrad's noise: one CPU stream per (seed, volume), so a volume gets the same noisy
    copies whatever batch or subset it is explained in, and whatever the model."""
    out = []
    for position in positions:
        state = np.random.SeedSequence([int(seed), int(position)]).generate_state(1, np.uint64)
        out.append(torch.Generator().manual_seed(int(state[0])))
    return out


def volume_saliency(
    model: nn.Module,
    source: VolumeSource,
    classes: Sequence[str],
    *,
    method: str = DEFAULT_METHOD,
    target: str = "true",
    max_per_class: int = 64,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
    steps: int | Mapping[str, int] = IG_STEPS,
    tolerance: float | None = None,
    max_steps: int = IG_MAX_STEPS,
    rule: str = "mean",
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
    keep_volumes: bool = False,
    mask: np.ndarray | None = None,
    only: int | None = None,
) -> dict[str, EmotionMap]:
    """Each emotion's map (:class:`EmotionMap`), optionally with every volume's map.

    The volumes are a seeded sample (``seed``) of at most ``max_per_class`` per emotion; the
    same arguments pick the same volumes and, for SmoothGrad, draw the same noise, whatever the
    model, so a trained and a weight-randomised model are compared on identical inputs.
    ``target="true"`` explains each volume's true emotion, ``"pred"`` the predicted one.

    Integrated gradients use ``steps`` midpoint steps (an int, or one per emotion) and always
    measure their completeness gap; with a ``tolerance`` the steps double, up to ``max_steps``,
    and the *whole* map is recomputed until the gap ``rule`` names (``"mean"`` over the map's
    volumes, since the map is their mean, or the worst volume's, ``"max"``) is within it.
    ``keep_volumes`` keeps each volume's map at the voxels of ``mask`` (for the
    bootstrap of :mod:`emocore.interpret.saliency_checks`). ``only`` explains just that many of each
    emotion's volumes, evenly spaced through them (:func:`spread`; the cheaper maps of the
    cascading randomisation), each with the noise it has in the full map.
    """
    check_choice("method", method, METHODS)
    check_choice("target", target, ("true", "pred"))
    check_choice("rule", rule, ("mean", "max"))
    dev = choose_device(device)
    model = model.to(dev).eval()
    keep = None if mask is None else torch.from_numpy(np.asarray(mask, bool).reshape(-1))
    out: dict[str, EmotionMap] = {}
    for k, idx in _explained_volumes(source, len(classes), max_per_class, seed).items():
        if only is not None:
            idx = idx[spread(len(idx), only)]
        name = classes[k]
        n = int(steps[name]) if isinstance(steps, Mapping) else int(steps)
        if method == "integrated-gradients":
            _check_steps(tolerance, n, max_steps)
        while True:
            acc = torch.zeros(source.shape, device=dev)
            deltas, kept = [], []
            for x, t, positions in _batches(model, source, idx, k, target, batch_size, dev):
                generator = _noise_generators(seed, positions) if method == "smoothgrad" else None
                sal = attribute(
                    model,
                    x,
                    t,
                    method=method,
                    steps=n,
                    samples=samples,
                    noise=noise,
                    generator=generator,
                )
                if method == "integrated-gradients":
                    deltas.append(ig_completeness(model, x, t, sal))
                size = sal if method in SIGNED_MEAN_METHODS else sal.abs()
                acc += size.sum(0)
                if keep_volumes:
                    flat = size.flatten(1).cpu()
                    kept.append((flat if keep is None else flat[:, keep]).numpy())
            check = None
            if deltas:
                delta = torch.cat(deltas)
                worst = _worst(delta)
                defined = delta[~torch.isnan(delta)]
                mean = float(defined.mean()) if defined.numel() else float("nan")
                gap = worst if rule == "max" else mean
                ok = tolerance is None or not gap > tolerance
                check = MapCheck(
                    steps=n, delta_mean=mean, delta_max=worst, converged=ok, n_volumes=len(idx)
                )
                if not ok and n * 2 <= max_steps:
                    n *= 2
                    continue
            break
        out[name] = EmotionMap(
            mean=(acc / len(idx)).abs().cpu().numpy(),
            volumes=np.concatenate(kept) if keep_volumes else None,
            check=check,
        )
    return out


def emotion_saliency(
    model: nn.Module,
    source: VolumeSource,
    classes: Sequence[str],
    *,
    method: str = DEFAULT_METHOD,
    target: str = "true",
    max_per_class: int = 64,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
    steps: int = IG_STEPS,
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
) -> dict[str, np.ndarray]:
    """Each class's map over (up to ``max_per_class``) volumes of that class: the size of the
    signed mean for SmoothGrad and the gradient, the mean size for the others (module docstring).

    ``target="true"`` explains the true class of each volume; ``"pred"`` the predicted one.
    ``steps`` are the integrated-gradients midpoint steps; ``samples`` and ``noise`` are
    SmoothGrad's (each ignored by the other methods). See :func:`volume_saliency`.
    """
    found = volume_saliency(
        model,
        source,
        classes,
        method=method,
        target=target,
        max_per_class=max_per_class,
        batch_size=batch_size,
        device=device,
        seed=seed,
        steps=steps,
        samples=samples,
        noise=noise,
    )
    return {name: m.mean for name, m in found.items()}


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


def spread(n: int, only: int) -> np.ndarray:
    """``only`` positions of ``range(n)`` evenly spaced from the first to the last (all of
    them when ``only >= n``)."""
    if isinstance(only, bool) or not isinstance(only, int) or only < 1:
        raise ConfigError(f"'only' must be a whole number >= 1; {only!r} was provided")
    if only >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, only).round().astype(int))


def _batches(model, source, idx, k, target, batch_size, dev):
    """(volumes, explained class, their positions) batches of the positions ``idx`` on ``dev``."""
    for a in range(0, len(idx), batch_size):
        positions = idx[a : a + batch_size]
        x = source.volumes(positions).to(dev).float()
        if target == "true":
            t = torch.full((len(x),), k, device=dev, dtype=torch.long)
        else:
            with torch.no_grad():
                t = model(x.unsqueeze(1)).argmax(1)
        yield x, t, positions


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
    """Integrated-gradients maps per emotion with completeness-checked step counts.

    :func:`volume_saliency` with ``method="integrated-gradients"``: each emotion's steps double
    from ``steps`` until its gap is within ``tolerance`` (``None``: keep the given steps and only
    measure the gap, as for a weight-randomised copy, which must use the trained map's steps).
    With ``tolerance=None`` and ``steps=IG_STEPS`` the maps equal :func:`emotion_saliency`'s.
    Returns the maps and a :class:`MapCheck` per emotion.
    """
    found = volume_saliency(
        model,
        source,
        classes,
        method="integrated-gradients",
        target=target,
        max_per_class=max_per_class,
        batch_size=batch_size,
        device=device,
        seed=seed,
        steps=steps,
        tolerance=tolerance,
        max_steps=max_steps,
        rule=rule,
    )
    maps = {name: m.mean for name, m in found.items()}
    checks = {name: m.check for name, m in found.items() if m.check is not None}
    return maps, checks


def describe_method(
    method: str = DEFAULT_METHOD,
    *,
    target: str = "true",
    steps: int = IG_STEPS,
    samples: int = SMOOTHGRAD_SAMPLES,
    noise: float = SMOOTHGRAD_NOISE,
) -> dict[str, Any]:
    """What a map of :func:`emotion_saliency` with these options holds, as BIDS-style keys.

    ``steps``: the integrated-gradients steps the map was made with (a converged map of
    :func:`emotion_saliency_checked` may have used more than :data:`IG_STEPS`); ``samples`` and
    ``noise``: SmoothGrad's noisy copies and their noise level.

    ``Method``; ``Samples`` and ``NoiseLevel`` (SmoothGrad), ``Steps`` and ``Baseline``
    (integrated gradients) or ``Layer`` (Grad-CAM); ``Target`` (which class is explained) and
    ``Units``: exactly what one voxel's number is.
    """
    check_choice("method", method, tuple(METHODS))
    check_choice("target", target, ("true", "pred"))
    explained = "its true emotion" if target == "true" else "the emotion the model predicted"
    if method == "smoothgrad":
        return {
            "Method": method,
            "Samples": samples,
            "NoiseLevel": noise,
            "Target": explained,
            "Units": (
                "logit per unit of z-scored signal: per voxel, the absolute value of the mean "
                "over the explained volumes of the SmoothGrad gradient of the class logit (the "
                f"model's pre-softmax class score), itself the mean gradient over {samples} "
                f"copies of the volume with Gaussian noise of {noise:.0%} of its range added; "
                "non-negative, not normalised"
            ),
        }
    if method == "gradient":
        return {
            "Method": method,
            "Target": explained,
            "Units": (
                "logit per unit of z-scored signal: per voxel, the absolute value of the mean "
                "over the explained volumes of the gradient of the class logit (the model's "
                "pre-softmax class score); non-negative, not normalised"
            ),
        }
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


def input_magnitude(
    source: VolumeSource, classes: Sequence[str], *, max_per_class: int = 64, seed: int = 0
) -> dict[str, np.ndarray]:
    """Mean |x| per emotion over the volumes :func:`volume_saliency` explains with the same
    ``max_per_class`` and ``seed``: the "map" the input alone gives, with no model at all."""
    out = {}
    for k, idx in _explained_volumes(source, len(classes), max_per_class, seed).items():
        out[classes[k]] = source.volumes(idx).float().abs().mean(0).numpy()
    return out


def saliency_auc(
    saliency: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
) -> float:
    """ROC AUC of |saliency| for telling apart voxels where ``truth`` exceeds ``threshold`` x its max."""
    # here: scikit-learn loads in 0.5 s, and only the AUC needs it
    from sklearn.metrics import roc_auc_score

    if saliency.shape != truth.shape:
        raise ConfigError(
            f"saliency {saliency.shape} and ground truth {truth.shape} are on different grids"
        )
    keep = np.ones(truth.shape, bool) if mask is None else mask.astype(bool)
    positive = planted_voxels(truth, mask, threshold=threshold)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.abs(saliency[keep])))


def planted_voxels(
    truth: np.ndarray, mask: np.ndarray | None = None, *, threshold: float = 0.5
) -> np.ndarray:
    """The voxels of ``mask`` (all without one; flattened, in mask order) where |truth| exceeds
    ``threshold`` x its maximum: the positives :func:`saliency_auc` scores a map against."""
    keep = np.ones(truth.shape, bool) if mask is None else mask.astype(bool)
    t = np.abs(truth[keep])
    return t > threshold * t.max() if t.max() > 0 else np.zeros_like(t, bool)


@torch.no_grad()
def embeddings(
    model: SeedCNN,
    source: VolumeSource,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> np.ndarray:
    """Output of the first dense layer (n, hidden) for every row of ``source``.

    Computed on a copy with batch norm folded into the convolutions and channels-last memory,
    as the fast inference path does (:mod:`emocore.models.engine`): the same features up to float
    rounding, in about two thirds of the time on CPU."""
    dev = choose_device(device)
    # nn.Module.to takes memory_format at runtime; torch's overloads for it leave it out
    net = fold_batchnorm(model).to(dev).to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    out = [
        net.features(
            x.to(dev).float().unsqueeze(1).contiguous(memory_format=torch.channels_last_3d)
        ).cpu()
        for x, _, _ in source.batches(batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def save_nifti(volume: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write a 3-D map as NIfTI (float32) atomically."""
    import nibabel as nib  # here: the GPU machine has no nibabel; only writing a map needs it

    img = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), np.asarray(affine))
    path = Path(path)
    atomic_write_bytes(path, img.to_bytes() if path.suffix == ".nii" else _gz(img))
    return path


def _gz(img) -> bytes:
    return gzip.compress(img.to_bytes(), compresslevel=1)
