"""Predictions of a stored model for one person, computed once and kept with the run.

The dashboard and ``emocore predict`` call :func:`subject_predictions`: it returns the stored
table when there is one and otherwise runs the model over the person's volumes (on the GPU when
there is one) and stores the result under ``<run>/inference/<design>/<model>/sub-XX.tsv``.

Inference runs on emocore's fast path (:class:`emocore.engine.InferenceEngine`): volumes stream
from the memory-mapped cache through read-ahead threads, batch norm is folded, and on CUDA bf16,
channels_last_3d and torch.compile with CUDA graphs apply. :func:`load_engine` prepares a stored
model once, so a caller predicting several people (the dashboard keeps engines cached) pays the
preparation and compilation once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from emocore._io import atomic_write_text, check_path_name
from emocore.constants import CLASSES
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.engine import FastOptions, InferenceEngine
from emocore.errors import ConfigError, RegistryError
from emocore.registry import DESIGNS, Registry
from emocore.study import prediction_table, read_predictions
from emocore.train import load_checkpoint

__all__ = [
    "list_models",
    "model_path",
    "load_engine",
    "subject_predictions",
    "stored_predictions_path",
    "VOLUME_SETS",
]

Progress = Callable[[float, str], None]

#: Which volumes :func:`subject_predictions` runs a model on: ``"labelled"`` (the volumes of the
#: model's classes, as in training) or ``"all"`` (every volume of the person, NONE included).
VOLUME_SETS: tuple[str, ...] = ("labelled", "all")


def list_models(registry: Registry, run_id: str) -> list[str]:
    """Final models of a run as ``<design>/<name>`` (e.g. ``single-subject/sub-01``, ``loso/sub-03``)."""
    folder = registry.run_dir(run_id) / "models"
    return (
        sorted(f"{p.parent.name}/{p.stem}" for p in folder.glob("*/*.pt"))
        if folder.is_dir()
        else []
    )


def _check_model(registry: Registry, run_id: str, model: object) -> tuple[str, str]:
    """``model`` as (design, name); ConfigError unless it is ``<design>/<name>`` of plain names."""
    design, _, name = model.partition("/") if isinstance(model, str) else ("", "", "")
    if design not in DESIGNS or not name:
        models = list_models(registry, run_id)
        raise ConfigError(
            f"--model {model!r} is not a model name: it must be <design>/<name> with a design "
            f"of {', '.join(repr(d) for d in DESIGNS)} (e.g. single-subject/sub-01); run "
            f"{run_id} has: {', '.join(models) or 'none'}"
        )
    where = registry.run_dir(run_id) / "models" / design
    check_path_name(f"a model name (in --model {model!r})", name, inside=where, example="sub-01")
    return design, name


def model_path(registry: Registry, run_id: str, model: str) -> Path:
    """The checkpoint of ``model`` (``<design>/<name>``) in run ``run_id``; it must exist."""
    design, name = _check_model(registry, run_id, model)
    path = registry.run_dir(run_id) / "models" / design / f"{name}.pt"
    if not path.is_file():
        models = list_models(registry, run_id)
        raise RegistryError(
            f"run {run_id} has no model '{model}'; it has: {', '.join(models) or 'none'}"
        )
    return path


def _check_volumes(volumes: object) -> str:
    if volumes not in VOLUME_SETS:
        raise ConfigError(
            f"'volumes' must be one of {', '.join(repr(v) for v in VOLUME_SETS)}; "
            f"{volumes!r} was provided"
        )
    return str(volumes)


def stored_predictions_path(
    registry: Registry, run_id: str, model: str, subject: str, *, volumes: str = "labelled"
) -> Path:
    """Where the predictions of ``model`` for ``subject`` are kept inside run ``run_id``:
    ``sub-XX.tsv`` for the labelled volumes, ``sub-XX.all.tsv`` for every volume."""
    suffix = "" if _check_volumes(volumes) == "labelled" else f".{volumes}"
    design, name = _check_model(registry, run_id, model)
    folder = registry.run_dir(run_id) / "inference" / design / name
    if not isinstance(subject, str) or not subject.isalnum() or not subject.isascii():
        raise ConfigError(
            f"--subject {subject!r} is not a subject label: it must be letters and digits only, "
            f"as in BIDS (e.g. 01 for sub-01), so that it stays inside {folder}"
        )
    return folder / f"sub-{subject}{suffix}.tsv"


def load_engine(
    registry: Registry,
    run_id: str,
    model: str,
    *,
    grid_shape: tuple[int, ...] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    options: FastOptions | None = None,
) -> tuple[InferenceEngine, dict]:
    """A stored model prepared for inference, and its checkpoint state (classes, trained_on)."""
    net, state = load_checkpoint(model_path(registry, run_id, model), grid_shape=grid_shape)
    engine = InferenceEngine(net, device=device, options=options, batch_size=batch_size)
    return engine, state


def subject_predictions(
    registry: Registry,
    run_id: str,
    model: str,
    cache: VolumeCache,
    subject: str,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    compute: bool = True,
    progress: Progress | None = None,
    engine: tuple[InferenceEngine, dict] | None = None,
    volumes: str = "labelled",
) -> pd.DataFrame | None:
    """Every labelled volume of ``subject`` predicted by ``model`` of run ``run_id``, or with
    ``volumes="all"`` every volume, NONE included (its ``true`` is ``"NONE"``: a volume no
    emotion was labelled in, which has no correct answer; see
    :func:`emocore.summaries.every_volume_summary`).

    The table has the prediction-table columns plus ``seen`` (the model was trained on this
    person) and ``seconds``, ``volumes_per_s`` and ``engine`` (what the fast path did) in
    ``attrs``. Returns None when nothing is stored and ``compute`` is False. ``engine`` is the
    pair :func:`load_engine` returns, for callers that keep it between people; without it the
    model is loaded here (``device`` and ``batch_size`` apply only then).
    """
    path = stored_predictions_path(registry, run_id, model, subject, volumes=volumes)
    if path.exists():
        return read_predictions(path)
    if not compute:
        return None
    if engine is None:
        engine = load_engine(
            registry,
            run_id,
            model,
            grid_shape=cache.grid_shape,
            device=device,
            batch_size=batch_size,
        )
    runner, state = engine  # an engine on another grid refuses the volumes with the fix
    classes = list(state["extra"].get("classes", CLASSES[1:]))
    if subject not in cache.subjects:
        raise ConfigError(
            f"subject '{subject}' is not in the cache at {cache.path}; it holds {', '.join(cache.subjects)}"
        )
    meta = select(cache, subjects=[subject], classes=classes if volumes == "labelled" else CLASSES)
    if progress is not None:
        progress(0.05, f"loading {len(meta)} volumes of sub-{subject}")
    source = VolumeSource(cache, meta, preload=False)  # one pass: stream, do not load twice
    t0 = time.perf_counter()

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(0.05 + 0.9 * fraction, message)

    probs = runner.predict_proba(source, progress=step)
    seconds = time.perf_counter() - t0
    seen = subject in state["extra"].get("trained_on", [])
    known = meta["label"].isin(classes).to_numpy()
    index = pd.Index(classes).get_indexer(meta["label"])  # -1 for NONE, when volumes == "all"
    table = prediction_table(meta.assign(y=np.where(known, index, 0)), probs, classes,
                             seen=np.full(len(meta), seen), model=model)  # fmt: skip
    table["true"] = meta["label"].to_numpy()  # NONE stays NONE, not classes[0]
    atomic_write_text(path, table.to_csv(sep="\t", index=False))
    table.attrs.update(
        seconds=seconds,
        volumes_per_s=len(meta) / seconds if seconds > 0 else None,
        engine=runner.describe(),
    )
    if progress is not None:
        progress(1.0, f"{len(meta)} volumes in {seconds:.1f} s")
    return table
