"""Train the seed network: an explicit loop, a progress callback, atomic checkpoints, resume.

The loop keeps running sums of loss and correct predictions on the device and reads them back
once per epoch, so there is no host synchronisation per step. Everything the run needs to be
repeated (config, classes, grid, seed) travels in the checkpoint; checkpoints hold only tensors and
plain Python values so they load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.data.stream import stream_batches
from emocore.device import choose_device
from emocore.errors import CheckpointError, ConfigError, check_choice, check_known_keys
from emocore.models.cnn3d import SeedCNN
from emocore.models.engine import (
    FastOptions,
    InferenceEngine,
    check_compile_option,
    gpu_oom_error,
    maybe_compile,
    peak_gpu_gib,
)
from emocore.progress import EpochHook, Progress

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train_model",
    "predict_proba",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1

#: on_epoch (an EpochHook) gets {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
#: "val_balanced_acc", "seconds"}; the val_* values are None without a validation source
EPOCH_SELECTIONS = ("fixed", "inner")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How one model is trained; saved with every checkpoint and run.

    ``epoch_selection`` says how many epochs a fold trains: ``"fixed"`` trains exactly ``epochs``
    (the poster's setting); ``"inner"`` treats ``epochs`` as a maximum and lets the caller choose
    the count per outer fold by early stopping on an inner fold of that fold's training data
    (:func:`emocore.training.tuning.choose_epochs`). :func:`train_model` itself always trains ``epochs``.
    Configs saved before the option existed load as ``"fixed"``.
    """

    epochs: int = 50
    epoch_selection: str = "fixed"
    lr: float = 1e-3
    batch_size: int = 32
    class_weights: bool = False
    widths: tuple[int, int, int] = (16, 32, 64)
    hidden: int = 128
    dropout: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on the CPU
    channels_last: bool = True  # channels_last_3d memory format (faster on GPU and CPU)
    compile: str = (
        "auto"  # torch.compile: "auto" (CUDA with Triton), "on", "off"; falls back to eager
    )
    prefetch: int = 3  # batches read ahead in background threads (0 = read in the loop)

    def __post_init__(self) -> None:
        check_choice("epoch_selection", self.epoch_selection, EPOCH_SELECTIONS)
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1; {self.epochs} was given"),
            (0 < self.lr < 1, f"lr must be in (0, 1); {self.lr} was given"),
            (self.batch_size >= 1, f"batch_size must be at least 1; {self.batch_size} was given"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1); {self.dropout} was given"),
            (len(self.widths) == 3, f"widths must have 3 entries; {self.widths} was given"),
            (self.prefetch >= 0, f"prefetch must be >= 0; {self.prefetch} was given"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        check_compile_option(self.compile)
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A recorded training config (a checkpoint's, a study's ``train``); keys this version
        does not have are refused, naming them (none has been removed since the first version)."""
        check_known_keys(d, cls.__dataclass_fields__, "a training config")
        known = dict(d)
        if "widths" in known:
            known["widths"] = tuple(known["widths"])
        return cls(**known)


@dataclass
class TrainResult:
    model: SeedCNN
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    volumes_per_s: float = 0.0
    compiled: bool = False
    peak_gpu_memory_gib: float | None = None


def _make_model(in_shape: Sequence[int], n_classes: int, cfg: TrainConfig) -> SeedCNN:
    return SeedCNN(in_shape, n_classes, widths=cfg.widths, hidden=cfg.hidden, dropout=cfg.dropout)


def _class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).float()
    w = torch.where(
        counts > 0, counts.sum() / (n_classes * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    return w


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda"
    )


def _distributed() -> tuple[int, int]:
    """(rank, world size) of a torch.distributed run (torchrun), or (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _run_epoch(
    module: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    source: VolumeSource,
    cfg: TrainConfig,
    device: torch.device,
    loss_fn,
    optimizer=None,
    generator=None,
    *,
    n_classes: int,
) -> tuple[float, float, float]:
    """One pass over ``source``: ``module`` is switched to train/eval mode, ``forward`` is called.

    Returns (mean loss, accuracy, balanced accuracy). Per-class hit and volume counts are summed
    on the device with ``scatter_add_`` (no per-sample Python work, no host sync per batch).
    """
    train = optimizer is not None
    module.train(train)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    # misses of each true class in slots 0..K-1, hits in K..2K-1
    per_class = torch.zeros(2 * n_classes, device=device, dtype=torch.long)
    amp = cfg.amp and device.type == "cuda"
    with torch.set_grad_enabled(train):
        shard = _distributed() if train else (0, 1)
        for x, y, _, _ in stream_batches(
            source,
            cfg.batch_size,
            device,
            shuffle=train,
            generator=generator,
            shard=shard,
            prefetch=cfg.prefetch,
        ):
            x = x.to(torch.bfloat16 if amp else torch.float32)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with _autocast(device, cfg.amp):
                logits = forward(x)
                loss = loss_fn(logits.float(), y)
            if train:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            hit = logits.argmax(1) == y
            loss_sum += loss.detach() * len(y)
            correct += hit.sum()
            per_class.scatter_add_(0, y + n_classes * hit.long(), torch.ones_like(y))
    if train and _distributed()[1] > 1:  # every rank saw its shard of each batch: add them up
        torch.distributed.all_reduce(loss_sum)
        torch.distributed.all_reduce(correct)
        torch.distributed.all_reduce(per_class)
    n = max(len(source), 1)
    return float(loss_sum) / n, float(correct) / n, _balanced(per_class)


def _balanced(per_class: torch.Tensor) -> float:
    """Mean recall over the classes present, from (2K,) counts of misses then hits (0 if none)."""
    misses, hits = per_class.double().view(2, -1)
    totals = misses + hits
    present = totals > 0
    if not bool(present.any()):
        return 0.0
    return float((hits[present] / totals[present]).mean())


def _is_compile_failure(exc: BaseException) -> bool:
    """An error raised by torch.compile's machinery (Dynamo, AOTAutograd, Inductor), not by emocore."""
    while exc is not None:
        module = type(exc).__module__
        if module.startswith(("torch._dynamo", "torch._inductor", "torch._functorch", "triton")):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def train_model(
    train: VolumeSource,
    val: VolumeSource | None,
    config: TrainConfig,
    *,
    n_classes: int,
    progress: Progress | None = None,
    on_epoch: EpochHook | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a fresh :class:`SeedCNN` on ``train``; score ``val`` after every epoch (no selection on it).

    With ``checkpoint`` the state is saved atomically after each epoch; with ``resume`` an existing
    checkpoint of the same config continues where it stopped. If torch.compile fails (its
    backward pass is compiled lazily, so a failure can come after the first forward), training
    starts again eagerly from the same seed (or from the last checkpoint), with a warning.
    """

    def attempt(compile_option: str, resume: bool) -> TrainResult:
        return _train(
            train,
            val,
            config,
            n_classes=n_classes,
            progress=progress,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
            resume=resume,
            extra=extra,
            compile_option=compile_option,
        )

    option = config.compile
    if option == "auto" and _distributed()[1] > 1:
        # DDP with SyncBatchNorm breaks torch.compile's graphs, and a compile failure on one
        # rank would leave the others waiting in all-reduce: distributed runs compile only on "on"
        option = "off"
    if option == "off":
        return attempt("off", resume)
    try:
        return attempt(option, resume)
    except Exception as exc:
        if not _is_compile_failure(exc) or _distributed()[1] > 1:
            raise
        logger.warning(
            "torch.compile failed while training (%s: %s); training eagerly instead",
            exc.__class__.__name__,
            str(exc).splitlines()[0][:200] if str(exc) else "",
        )
        # with a checkpoint, go on from the last finished epoch, if there is one
        return attempt("off", resume or checkpoint is not None)


class _Forward(Protocol):
    """The training network's forward pass as :func:`emocore.models.engine.maybe_compile` wraps it."""

    @property
    def is_compiled(self) -> bool: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass
class _Training:
    """What one training run works with: the network (``model``; ``net`` is it, or its DDP
    wrapper), its forward pass, the optimiser and loss, the generator that shuffles the batches,
    the device and this process's rank."""

    model: SeedCNN
    net: nn.Module
    forward: _Forward
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    generator: torch.Generator
    device: torch.device
    rank: int


def _set_up(
    train: VolumeSource, config: TrainConfig, *, n_classes: int, compile_option: str
) -> _Training:
    """A fresh network seeded by ``config.seed``, on its device, with its optimiser and loss.

    The random draws happen in a fixed order (the global seed, the shuffling generator, then the
    network's initial weights), so a seed always gives the same run.
    """
    device = choose_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rank, world = _distributed()
    model = _make_model(train.shape, n_classes, config).to(device)
    if config.channels_last:
        # nn.Module.to takes memory_format at runtime; torch's overloads for it leave it out
        model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    net: nn.Module = model
    if world > 1:
        # One model per process, gradients averaged by DDP. On GPUs batch-norm statistics are
        # synchronised, so N processes with batch B/N train like one process with batch B; on the
        # CPU (gloo) SyncBatchNorm is unavailable and each process normalises its own shard.
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    forward = maybe_compile(
        net, option=compile_option, device=device, dynamic=None, what="training model"
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, fused=True if device.type == "cuda" else None
    )
    weight = _class_weights(train.y, n_classes).to(device) if config.class_weights else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    return _Training(
        model=model,
        net=net,
        forward=forward,
        optimizer=optimizer,
        loss_fn=loss_fn,
        generator=generator,
        device=device,
        rank=rank,
    )


def _resume_from(
    checkpoint: Path, config: TrainConfig, in_shape: Sequence[int], run: _Training
) -> tuple[list[dict[str, Any]], int]:
    """Load an interrupted fold's checkpoint into ``run`` (weights, optimiser, the generator's
    state); return its history and the number of epochs it finished."""
    state = _read_checkpoint(checkpoint)
    if not isinstance(state.get("generator"), torch.Tensor) or "epoch" not in state:
        raise CheckpointError(
            f"{checkpoint} lacks the random state or epoch a --resume needs (it is not a "
            "fold checkpoint of an interrupted run); start a new run instead of --resume"
        )
    if TrainConfig.from_dict(state["config"]) != config or list(state["in_shape"]) != list(
        in_shape
    ):
        raise CheckpointError(
            f"{checkpoint} was written by a run with another config or grid; start a new run instead of --resume"
        )
    run.model.load_state_dict(state["model"])
    if "optimizer" in state:
        run.optimizer.load_state_dict(state["optimizer"])
    run.generator.set_state(state["generator"])
    history = list(state.get("history", []))
    start_epoch = int(state["epoch"])
    logger.info("resuming %s after epoch %d", checkpoint, start_epoch)
    return history, start_epoch


def _one_epoch(
    run: _Training,
    train: VolumeSource,
    val: VolumeSource | None,
    config: TrainConfig,
    *,
    epoch: int,
    n_classes: int,
) -> dict[str, Any]:
    """Train one epoch, then score ``val`` if there is one; return the epoch's record."""
    te = time.perf_counter()
    oom = False
    try:
        train_loss, train_acc, _ = _run_epoch(
            run.net,
            run.forward,
            train,
            config,
            run.device,
            run.loss_fn,
            run.optimizer,
            run.generator,
            n_classes=n_classes,
        )
    except torch.cuda.OutOfMemoryError:
        oom = True
    if oom:  # outside the except block, so the failed batch's tensors can be freed
        torch.cuda.empty_cache()
        raise gpu_oom_error(config.batch_size, run.device, "--batch-size")
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": None,
        "val_acc": None,
        "val_balanced_acc": None,
    }
    if val is not None and len(val):
        record["val_loss"], record["val_acc"], record["val_balanced_acc"] = _run_epoch(
            run.model, run.model, val, config, run.device, run.loss_fn, n_classes=n_classes
        )
    record["seconds"] = round(time.perf_counter() - te, 3)
    return record


def _plain_model(
    model: SeedCNN,
    in_shape: Sequence[int],
    n_classes: int,
    config: TrainConfig,
    device: torch.device,
) -> SeedCNN:
    """``model`` with ordinary batch norm: a SyncBatchNorm network (distributed training on
    GPUs) is copied into a plain one with the same weights and statistics."""
    if not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
        return model
    plain = _make_model(in_shape, n_classes, config).to(device)
    plain.load_state_dict(model.state_dict())
    return plain


def _train(
    train: VolumeSource,
    val: VolumeSource | None,
    config: TrainConfig,
    *,
    n_classes: int,
    progress: Progress | None,
    on_epoch: EpochHook | None,
    checkpoint: str | Path | None,
    resume: bool,
    extra: dict[str, Any] | None,
    compile_option: str,
) -> TrainResult:
    """One attempt of :func:`train_model` with the given torch.compile option."""
    if len(train) == 0:
        raise ConfigError("no training volumes; select more subjects, runs or classes")
    run = _set_up(train, config, n_classes=n_classes, compile_option=compile_option)
    device = run.device
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        history, start_epoch = _resume_from(Path(checkpoint), config, train.shape, run)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    seen = 0
    for epoch in range(start_epoch, config.epochs):
        record = _one_epoch(run, train, val, config, epoch=epoch, n_classes=n_classes)
        seen += len(train)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if checkpoint is not None and run.rank == 0:
            save_checkpoint(
                checkpoint,
                run.model,
                config=config,
                classes_n=n_classes,
                epoch=epoch + 1,
                history=history,
                optimizer=run.optimizer,
                generator=run.generator,
                extra=extra,
            )
        if progress is not None:
            progress(
                (epoch + 1) / config.epochs,
                f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.3f}",
            )
    seconds = time.perf_counter() - t0
    model = _plain_model(run.model, train.shape, n_classes, config, device)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        seconds=seconds,
        volumes_per_s=seen / seconds if seconds > 0 else 0.0,
        compiled=run.forward.is_compiled,
        peak_gpu_memory_gib=peak_gpu_gib(device),
    )


def predict_proba(
    model: nn.Module,
    source: VolumeSource,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    amp: bool = True,
    options: FastOptions | None = None,
) -> np.ndarray:
    """Class probabilities (n, K) for every row of ``source``, in order, on emocore's fast path.

    A thin wrapper around :class:`~emocore.models.engine.InferenceEngine` for a single use; keep an
    engine when the same model predicts several sources. ``amp=False`` keeps CUDA in fp32.
    """
    opts = options or FastOptions()
    if not amp:
        opts = replace(opts, amp=False)
    engine = InferenceEngine(model, device=device, options=opts, batch_size=batch_size)
    return engine.predict_proba(source)


# -- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path,
    model: SeedCNN,
    *,
    config: TrainConfig,
    classes_n: int,
    epoch: int,
    history: list[dict[str, Any]] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: on any failure (disk full included) the previous one survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
        "in_shape": list(model.in_shape),
        "n_classes": int(classes_n),
        "epoch": int(epoch),
        "history": history or [],
        "extra": extra or {},
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if generator is not None:
        state["generator"] = generator.get_state()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        # torch.save reports a failed write (a full disk included) as RuntimeError, not OSError.
        if not isinstance(exc, (OSError, RuntimeError)):
            raise
        raise _save_error(path, exc) from exc
    return path


def _save_error(path: Path, exc: BaseException) -> CheckpointError:
    """A CheckpointError naming the folder, its free space and the fix."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    full = getattr(exc, "errno", None) == errno.ENOSPC or "no space left" in str(exc).lower()
    what = "the disk is full" if full else f"{exc.__class__.__name__}: {exc}"
    return CheckpointError(
        f"could not save {path.name} in {path.parent} ({free}): {what}; the previous checkpoint "
        "is intact and no partial file was left. Free space there and --resume the run"
    )


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train a model first (`emocore train`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(
            f"{path} is not a readable emocore checkpoint ({exc.__class__.__name__}); it may be "
            "truncated or not from emocore. Retrain, or restore it from a backup"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an emocore checkpoint of format {CHECKPOINT_FORMAT}; retrain the model"
        )
    problem = _state_problem(state)
    if problem:
        raise CheckpointError(
            f"{path} is damaged: {problem}; retrain the model, or restore the file from a backup"
        )
    return state


def _state_problem(state: dict[str, Any]) -> str | None:
    """What a checkpoint of the right format lacks or holds of the wrong type, or None."""
    for key, kind in (("model", dict), ("config", dict), ("in_shape", list), ("n_classes", int)):
        if key not in state:
            return f"it lacks the key {key!r}"
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            return f"{key!r} is {type(state[key]).__name__}, not {kind.__name__}"
    if not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        return "'model' holds values that are not tensors"
    shape = state["in_shape"]
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        return f"'in_shape' is {shape!r}, not three positive sides"
    if state["n_classes"] < 2:
        return f"'n_classes' is {state['n_classes']}, fewer than two classes"
    for key, kind in (("extra", dict), ("history", list), ("epoch", int)):
        if key in state and not isinstance(state[key], kind):
            return f"{key!r} is {type(state[key]).__name__}, not {kind.__name__}"
    try:
        TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
        return f"its training config cannot be read ({exc})"
    return None


def load_checkpoint(
    path: str | Path,
    *,
    grid_shape: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[SeedCNN, dict[str, Any]]:
    """Load a model (``weights_only=True``); check it fits ``grid_shape`` and ``classes`` when given."""
    path = Path(path)
    state = _read_checkpoint(path)
    extra = state.get("extra", {})
    if grid_shape is not None and list(grid_shape) != list(state["in_shape"]):
        raise CheckpointError(
            f"{path} was trained on a {tuple(state['in_shape'])} grid but the data are "
            f"{tuple(grid_shape)}; use a cache on the model's grid or retrain"
        )
    if classes is not None and "classes" in extra and list(extra["classes"]) != list(classes):
        raise CheckpointError(
            f"{path} predicts {extra['classes']} but {list(classes)} were asked for; retrain with those classes"
        )
    cfg = TrainConfig.from_dict(state["config"])
    try:
        model = _make_model(state["in_shape"], state["n_classes"], cfg)
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit the seed network ({exc}); retrain") from exc
    model.eval()
    return model, state
