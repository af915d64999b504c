"""Sanity checks of saliency maps: are they complete, and do they depend on what the model learnt?

Adebayo et al. (2018, "Sanity checks for saliency maps", NeurIPS) showed that some attribution
maps look almost the same for a trained network and for the same network with random weights:
such a map shows the input (edges, bright voxels), not what the model uses. The
*model-randomisation test* re-initialises the weights, recomputes the same map on the same
volumes and measures how similar the two maps still are (Spearman rank correlation). A map that
explains the model should change a lot: a rank correlation near 1 is a warning.

* :func:`randomise_model` copies a model and re-initialises the weights of its layers, all of
  them at once by default; :func:`cascade_order` lists the layers top (output) first, for the
  cascading variant of the test (randomise the first *n* names of that list).
* :func:`rank_correlation` is the Spearman correlation of two maps within the brain mask.
* :func:`check_record` assembles the per-map record from its parts;
  :func:`saliency_checks` makes the maps of a trained and a randomised model and the record of
  every emotion in one call.

The record of one map has exactly these keys:

``completeness_delta``
    ``{"mean": float, "max": float}`` over the volumes the map averages: the relative gap
    between the sum of the integrated-gradients attributions and the change of the class logit
    from the all-zero baseline (:func:`emocore.saliency.ig_completeness`); None for Grad-CAM.
``ig_steps``
    the midpoint steps the trained map used after step doubling; None for Grad-CAM.
``randomisation_rank_correlation``
    Spearman's rho between the trained and the randomised model's maps within the mask.
``auc`` and ``auc_randomised`` (only when a planted truth is given)
    :func:`emocore.saliency.saliency_auc` of the trained and of the randomised model's map
    against the planted pattern (0.5 = chance).

Undefined numbers are NaN; :func:`emocore._io.json_safe` writes them as ``null``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.errors import ConfigError, check_choice
from emocore.saliency import (
    IG_MAX_STEPS,
    IG_TOLERANCE,
    METHODS,
    MapCheck,
    emotion_saliency,
    emotion_saliency_checked,
    saliency_auc,
)

__all__ = [
    "auc_words",
    "linear_pattern_sentence",
    "saliency_checks_sentence",
    "RECORD_KEYS",
    "CheckedMaps",
    "cascade_order",
    "randomise_model",
    "rank_correlation",
    "check_record",
    "saliency_checks",
]

#: Keys of every record; ``auc`` and ``auc_randomised`` appear only with a planted truth.
RECORD_KEYS = ("completeness_delta", "ig_steps", "randomisation_rank_correlation")
TRUTH_KEYS = ("auc", "auc_randomised")


@runtime_checkable
class _Resettable(Protocol):
    """A layer that re-draws its own parameters (and running statistics)."""

    def reset_parameters(self) -> None: ...


def _initialisable(model: nn.Module) -> list[tuple[str, _Resettable]]:
    """Modules that own parameters or buffers and can re-draw them, in registration order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if name
        and (
            any(True for _ in m.parameters(recurse=False))
            or any(True for _ in m.buffers(recurse=False))
        )
        and isinstance(m, _Resettable)
    ]


def cascade_order(model: nn.Module) -> list[str]:
    """Names of the re-initialisable layers from the output back to the input.

    For the seed CNN: ``fc2``, ``fc1.linear``, ``block3.bn``, ``block3.conv``, ... The
    cascading randomisation of Adebayo et al. re-initialises ``cascade_order(m)[:n]`` for
    growing ``n``. (Registration order is the forward order for the seed CNN and for
    ``nn.Sequential`` models; a model that registers layers out of order would need its own list.)
    """
    return [name for name, _ in reversed(_initialisable(model))]


def randomise_model(
    model: nn.Module, *, seed: int = 0, layers: Sequence[str] | None = None
) -> nn.Module:
    """A copy of ``model`` with freshly initialised weights; ``model`` itself is untouched.

    ``layers=None`` re-initialises every layer at once (the strongest form of the test, and the
    one :func:`saliency_checks` uses); otherwise only the named layers (see
    :func:`cascade_order`). Each layer is re-drawn by its own ``reset_parameters`` (PyTorch's
    default initialisation; batch-norm layers also forget their running statistics), on the CPU
    with a seeded generator, so the same ``seed`` gives the same weights on every device and the
    global random state is left as it was. The copy is returned on the CPU, in eval mode.
    """
    randomised = copy.deepcopy(model).cpu()
    modules = dict(_initialisable(randomised))
    names = list(modules) if layers is None else list(layers)
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ConfigError(
            f"'layers' must name re-initialisable layers of the model, one of {list(modules)}; "
            f"{unknown} was provided"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in names:
            modules[name].reset_parameters()
    return randomised.eval()


def _masked_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, ...]:
    if a.shape != b.shape:
        raise ConfigError(f"the two maps are on different grids: {a.shape} and {b.shape}")
    if mask is None:
        return a.reshape(-1), b.reshape(-1)
    if mask.shape != a.shape:
        raise ConfigError(f"the mask {mask.shape} and the maps {a.shape} are on different grids")
    keep = mask.astype(bool)
    return a[keep], b[keep]


def rank_correlation(map_a: np.ndarray, map_b: np.ndarray, mask: np.ndarray | None) -> float:
    """Spearman's rank correlation of two maps over the voxels in ``mask`` (all if None).

    NaN when either map is constant within the mask (no ranking to compare).
    """
    from scipy.stats import spearmanr

    a, b = _masked_pair(np.asarray(map_a), np.asarray(map_b), mask)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def check_record(
    trained: np.ndarray,
    randomised: np.ndarray,
    mask: np.ndarray | None,
    *,
    check: MapCheck | None = None,
    truth: np.ndarray | None = None,
) -> dict[str, Any]:
    """The record of one map (keys in the module docstring) from the two maps and their check.

    ``check`` is the trained map's :class:`~emocore.saliency.MapCheck` (None for Grad-CAM);
    ``truth`` the planted pattern on the same grid, if there is one.
    """
    record: dict[str, Any] = {
        "completeness_delta": (
            None if check is None else {"mean": check.delta_mean, "max": check.delta_max}
        ),
        "ig_steps": None if check is None else int(check.steps),
        "randomisation_rank_correlation": rank_correlation(trained, randomised, mask),
    }
    if truth is not None:
        record["auc"] = saliency_auc(trained, truth, mask)
        record["auc_randomised"] = saliency_auc(randomised, truth, mask)
    return record


@dataclass(frozen=True)
class CheckedMaps:
    """What :func:`saliency_checks` made: per emotion, the trained model's map, the randomised
    model's map (same volumes, method and steps) and the record of the checks."""

    maps: dict[str, np.ndarray]
    randomised: dict[str, np.ndarray]
    records: dict[str, dict[str, Any]]


def saliency_checks(
    model: nn.Module,
    source: VolumeSource,
    classes: Sequence[str],
    *,
    mask: np.ndarray | None,
    truths: Mapping[str, np.ndarray] | None = None,
    method: str = "integrated-gradients",
    target: str = "true",
    max_per_class: int = 16,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
    tolerance: float = IG_TOLERANCE,
    max_steps: int = IG_MAX_STEPS,
    randomisation_seed: int = 0,
    rule: str = "mean",
) -> CheckedMaps:
    """Maps of ``model`` per emotion and their sanity checks, in one call.

    The trained model's maps are those of :func:`emocore.saliency.emotion_saliency` on the
    same volumes (same ``seed``, ``max_per_class`` and ``target``), except that integrated
    gradients double their steps until the completeness gap is within ``tolerance``
    (:func:`emocore.saliency.emotion_saliency_checked`). The model is then copied and *all* its
    layers re-initialised at once (:func:`randomise_model` with ``randomisation_seed``), and the
    same maps are made from the copy with the steps the trained maps used. ``truths`` maps an
    emotion to its planted pattern (synthetic cohorts); emotions without one get no AUC keys.
    """
    check_choice("method", method, tuple(METHODS))
    common: dict[str, Any] = {
        "target": target,
        "max_per_class": max_per_class,
        "batch_size": batch_size,
        "device": device,
        "seed": seed,
    }
    randomised_model = randomise_model(model, seed=randomisation_seed)
    checks: dict[str, MapCheck | None]
    if method == "integrated-gradients":
        maps, found = emotion_saliency_checked(
            model, source, classes, tolerance=tolerance, max_steps=max_steps, rule=rule, **common
        )
        checks = dict(found)
        randomised, _ = emotion_saliency_checked(
            randomised_model,
            source,
            classes,
            tolerance=None,
            steps={name: c.steps for name, c in found.items()},
            max_steps=max_steps,
            **common,
        )
    else:
        maps = emotion_saliency(model, source, classes, method=method, **common)
        randomised = emotion_saliency(randomised_model, source, classes, method=method, **common)
        checks = {name: None for name in maps}
    truths = truths or {}
    records = {
        name: check_record(
            maps[name], randomised[name], mask, check=checks[name], truth=truths.get(name)
        )
        for name in maps
    }
    return CheckedMaps(maps=maps, randomised=randomised, records=records)


def _fmt(value: Any, spec: str = ".2f") -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else format(number, spec)


def saliency_checks_sentence(checks: Mapping[str, Any], *, tolerance: float = IG_TOLERANCE) -> str:
    """One map's sanity checks (a study's ``saliency_checks`` entry) in plain words."""
    parts = []
    delta, steps = _fmt(checks.get("completeness_delta"), ".1%"), checks.get("ig_steps")
    if delta is not None and steps:
        met = float(checks["completeness_delta"]) <= tolerance
        parts.append(
            f"Completeness: the attributions add up to the score change within {delta} on average "
            f"after {steps} integrated-gradients steps ("
            + (
                f"within the {tolerance:.0%} tolerance"
                if met
                else f"above the {tolerance:.0%} "
                "tolerance: the step cap was reached, read the map with care"
            )
            + ")."
        )
    rho = _fmt(checks.get("randomisation_rank_correlation"))
    if rho is not None:
        high = float(checks["randomisation_rank_correlation"]) >= 0.5
        parts.append(
            f"Model randomisation (Adebayo et al. 2018): rank correlation {rho} with the map of "
            "a copy whose weights were re-drawn; "
            + (
                "that is high: much of this map follows the input, not what the model learnt."
                if high
                else "low values mean the map depends on what the model learnt."
            )
        )
    auc, auc_r = _fmt(checks.get("auc")), _fmt(checks.get("auc_randomised"))
    if auc is not None and auc_r is not None:
        trained, randomised = float(checks["auc"]), float(checks["auc_randomised"])
        parts.append(
            f"Against the planted pattern: AUC {auc} for the trained model, {auc_r} for the "
            "randomised copy (0.5 = chance); "
            + (
                "the randomised copy does as well or better, so this map does not show what "
                "the model learnt about the pattern."
                if randomised >= trained - 0.02
                else "the trained model's map is the better one."
            )
        )
    return " ".join(parts) or "No sanity checks were recorded for this map."


def auc_words(auc: float) -> str:
    """How well a map finds a planted pattern, in words: "finds" from AUC 0.7 (the usual
    "acceptable discrimination" of Hosmer and Lemeshow, Applied Logistic Regression), "finds
    only weakly" from 0.6, else "does not find". A description, not a test."""
    if auc >= 0.7:
        return "finds"
    if auc >= 0.6:
        return "finds only weakly"
    return "does not find"


def linear_pattern_sentence(pattern: Mapping[str, Any], emotion: str) -> str:
    """What the side-by-side view of a CNN map and the linear pattern shows, with the numbers."""
    text = (
        f"Above: where the CNN looks. Below: where a linear decoder trained on the same people's "
        f"volumes finds {emotion} information (|Haufe et al. 2014 activation pattern|, not its "
        "raw weights, which also load on noise). Both at the same crosshair, each with its own "
        "colour scale and the same share of its maximum as threshold."
    )
    r = _fmt(pattern.get("correlation_with_saliency"))
    if r is not None:
        text += f" Spatial correlation of the two maps within the brain mask: r = {r}."
    auc = _fmt(pattern.get("auc_vs_truth"))
    if auc is not None:
        text += f" The pattern finds the planted {emotion} pattern with AUC {auc}."
    return text
