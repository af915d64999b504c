"""The fast path: how emocore feeds volumes to the seed network and runs it.

Volumes reach it through :func:`emocore.data.stream.stream_batches` (read ahead in threads);
:class:`InferenceEngine` prepares a trained model once for inference and runs whole people
  through it. What it does is set by :class:`FastOptions`:

  ============  ===========================================================  =============
  option        what                                                          exact?
  ============  ===========================================================  =============
  fold_bn       batch norm folded into the convolution before it             yes (fp32)
  channels_last channels_last_3d memory format (faster on GPU and CPU)       yes (fp32)
  amp           bfloat16 weights and activations on CUDA (CPU stays fp32)    argmax >= 99.5%
  compile       torch.compile; falls back to eager if compiling fails        yes
  cuda_graphs   compiled in "reduce-overhead" mode (CUDA graphs) on CUDA     yes
  static_batch  the last batch is padded so every call has one shape         yes
  ============  ===========================================================  =============

``FastOptions.baseline()`` turns everything off: eager fp32, one batch at a time, the reference
that ``emocore bench`` and the agreement checks compare against.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from emocore.data.dataset import VolumeSource
from emocore.data.stream import DEFAULT_READERS, stream_batches
from emocore.device import choose_device
from emocore.errors import ConfigError, EmocoreError, check_choice
from emocore.progress import Progress

__all__ = [
    "FastOptions",
    "InferenceEngine",
    "fold_batchnorm",
    "maybe_compile",
    "default_inference_batch",
    "gpu_oom_error",
    "describe_path",
    "cudnn_benchmark",
    "peak_gpu_gib",
    "check_compile_option",
    "COMPILE_CHOICES",
]

logger = logging.getLogger(__name__)


#: Values of every ``compile`` option (FastOptions, TrainConfig, ``--compile``).
COMPILE_CHOICES = ("auto", "on", "off")


def check_compile_option(value: str) -> None:
    check_choice("compile", value, COMPILE_CHOICES)


def peak_gpu_gib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset, in GiB (None off CUDA)."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


@dataclass(frozen=True, kw_only=True)
class FastOptions:
    """Which speed-ups :class:`InferenceEngine` (and training, for the relevant ones) applies."""

    amp: bool = True
    channels_last: bool = True
    fold_bn: bool = True
    compile: str = "auto"  # "auto": on CUDA when Triton is installed; "on"; "off"
    cuda_graphs: bool = True
    static_batch: bool = True
    prefetch: int = 3  # batches read ahead of the one being computed (0 = read in the loop)
    readers: int = DEFAULT_READERS  # threads reading ahead

    def __post_init__(self) -> None:
        check_compile_option(self.compile)
        if self.prefetch < 0 or self.readers < 1:
            raise ConfigError(
                f"prefetch must be >= 0 and readers >= 1; got prefetch={self.prefetch}, readers={self.readers}"
            )

    @classmethod
    def baseline(cls) -> FastOptions:
        """Eager fp32 with nothing read ahead: the reference every speed figure is compared with."""
        return cls(
            amp=False,
            channels_last=False,
            fold_bn=False,
            compile="off",
            cuda_graphs=False,
            static_batch=False,
            prefetch=0,
            readers=1,
        )


def wants_compile(option: str, device: torch.device) -> bool:
    """Resolve ``compile='auto'``: compile on CUDA when Triton (Inductor's GPU backend) is present."""
    if option == "off":
        return False
    if option == "on":
        return True
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


# -- batch norm folding ----------------------------------------------------------------------
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every ``conv -> bn`` pair merged into the convolution.

    In eval mode batch norm is an affine map per channel, ``gamma (z - mean) / sqrt(var + eps) +
    beta``, so it can be absorbed into the weights and bias of the convolution that feeds it: one
    pass over the activations fewer, and the same outputs up to float rounding. The original model
    is left untouched. Pairs are found as ``conv``/``bn`` children of one ``nn.Sequential`` block
    (the seed network's layout); any batch norm counts, SyncBatchNorm from DDP training included.
    """
    return _fold(model)[0]


def _triple(values: tuple[int, ...]) -> tuple[int, int, int]:
    """A Conv3d size attribute (typed as any length by torch, always three long) as a 3-tuple."""
    first, second, third = values
    return first, second, third


def _fold(model: nn.Module) -> tuple[nn.Module, int]:
    """:func:`fold_batchnorm`, and how many conv/batch-norm pairs were merged."""
    folded = copy.deepcopy(model).eval()
    count = 0
    for block in folded.modules():
        if not isinstance(block, nn.Sequential):
            continue
        names = list(block._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = block._modules[first], block._modules[second]
            if not isinstance(conv, nn.Conv3d) or not isinstance(bn, _BatchNorm):
                continue
            if bn.running_mean is None or bn.running_var is None:
                continue  # batch norm without running statistics cannot be folded
            with torch.no_grad():
                scale = bn.running_var.add(bn.eps).rsqrt()
                if bn.weight is not None:
                    scale = scale * bn.weight
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                new_bias = (bias - bn.running_mean) * scale
                if bn.bias is not None:
                    new_bias = new_bias + bn.bias
                padding = conv.padding
                merged = nn.Conv3d(
                    conv.in_channels,
                    conv.out_channels,
                    _triple(conv.kernel_size),
                    stride=_triple(conv.stride),
                    padding=padding if isinstance(padding, str) else _triple(padding),
                    dilation=_triple(conv.dilation),
                    groups=conv.groups,
                    bias=True,
                ).to(device=conv.weight.device, dtype=conv.weight.dtype)
                assert merged.bias is not None  # built with bias=True
                merged.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1, 1))
                merged.bias.copy_(new_bias)
            block._modules[first] = merged
            block._modules[second] = nn.Identity()
            count += 1
    return folded, count


# -- torch.compile with a fallback -------------------------------------------------------------
class _CompiledOrEager:
    """Call the compiled module; if compiling or running it fails, warn once and stay eager.

    torch.compile reports most problems (no C compiler, no Triton, an unsupported op) only at the
    first call, so the fallback lives at call time. emocore's own errors (a volume of the wrong
    grid) are raised as they are: the eager model would raise them too.
    """

    def __init__(self, eager: nn.Module, compiled: Any, what: str) -> None:
        self.eager = eager
        self.compiled = compiled
        self.what = what
        self.fallback_reason: str | None = None

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(x)
            except EmocoreError:
                raise
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as exc:  # compile failures come in many types
                self.fallback_reason = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
                logger.warning(
                    "torch.compile of the %s failed (%s); running it eagerly instead",
                    self.what,
                    self.fallback_reason,
                )
                self.compiled = None
        return self.eager(x)


def maybe_compile(
    module: nn.Module,
    *,
    option: str,
    device: torch.device,
    mode: str | None = None,
    dynamic: bool | None = False,
    what: str = "model",
) -> _CompiledOrEager:
    """``module`` wrapped so calls use ``torch.compile`` when ``option`` says so, eager otherwise.

    ``dynamic=False`` (inference: every batch is padded to one shape) compiles one graph;
    ``None`` lets Dynamo make the batch dimension dynamic once it sees a second shape (training,
    whose last batch differs per fold), instead of compiling a graph per shape.
    """
    compiled = None
    if wants_compile(option, device):
        try:
            compiled = torch.compile(module, mode=mode, dynamic=dynamic)
        except Exception as exc:  # e.g. an unsupported Python version for dynamo
            logger.warning("torch.compile is unavailable (%s); running the %s eagerly", exc, what)
    return _CompiledOrEager(module, compiled, what)


@contextmanager
def cudnn_benchmark(device: torch.device, on: bool = True) -> Iterator[None]:
    """Let cuDNN pick the fastest convolution for fixed shapes, on CUDA only; restored after.

    Only ``torch.backends.cudnn.benchmark`` is touched: the user's TF32, precision and
    determinism settings stay as they are.
    """
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def describe_path(info: dict[str, Any]) -> str:
    """One line on what an engine did, from :meth:`InferenceEngine.describe` (CLI and dashboard)."""
    on = [
        name
        for name, key in (
            ("bf16", "bf16"),
            ("channels_last_3d", "channels_last"),
            ("batch norm folded", "batchnorm_folded"),
            ("torch.compile", "compiled"),
            ("CUDA graphs", "cuda_graphs"),
        )
        if info.get(key)
    ]
    text = f"{info.get('device', '?')}, batch {info.get('batch_size', '?')}: "
    text += ", ".join(on) or "eager fp32"
    if info.get("compile_fallback"):
        text += f" (torch.compile failed, ran eagerly: {info['compile_fallback']})"
    return text


# -- inference -------------------------------------------------------------------------------
def gpu_oom_error(batch_size: int, device: torch.device, option: str) -> ConfigError:
    """The message for a batch that does not fit in GPU memory."""
    free = total = 0
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
    return ConfigError(
        f"a batch of {batch_size} volumes does not fit in the memory of {device} "
        f"({free / 2**30:.1f} of {total / 2**30:.1f} GiB free); lower {option} "
        f"(e.g. {max(batch_size // 2, 1)}) or free the GPU"
    )


def default_inference_batch(
    grid: tuple[int, ...], device: torch.device, *, first_width: int = 16, amp: bool = True
) -> int:
    """A batch size that fits: from free GPU memory on CUDA, from a 1 GiB budget on the CPU.

    The estimate is dominated by the first convolution's output (every voxel times its
    channels), measured at about 2.3x that size per volume with the seed network on an H100.
    """
    voxels = math.prod(grid)
    bytes_per = 2 if (amp and device.type == "cuda") else 4
    per_volume = voxels * first_width * bytes_per * 2.5
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        budget, cap = free * 0.5, 1024
    else:
        budget, cap = 2**30, 64
    fit = int(budget // max(per_volume, 1))
    return max(1, min(cap, 2 ** int(math.log2(fit)) if fit >= 1 else 1))


class InferenceEngine:
    """A trained model prepared once for fast inference on one device.

    Parameters
    ----------
    model
        A trained :class:`~emocore.models.cnn3d.SeedCNN` (left untouched: the engine works on
        a copy).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    options
        The speed-ups; :meth:`FastOptions.baseline` gives the eager fp32 reference.
    batch_size
        Volumes per call; None picks one that fits (:func:`default_inference_batch`) and halves it
        if the GPU still runs out of memory. A batch given explicitly is kept, and an
        out-of-memory error names the option to lower.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        options: FastOptions | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.device = choose_device(device)
        self.options = options or FastOptions()
        opts = self.options
        self.n_classes = int(getattr(model, "n_classes", 0))
        self.grid = tuple(getattr(model, "in_shape", ()))
        net, self.folded = _fold(model) if opts.fold_bn else (copy.deepcopy(model).eval(), 0)
        self.amp = opts.amp and self.device.type == "cuda"
        # bf16 weights rather than autocast: the 139 M-parameter dense layer is not cast again
        # for every batch, and the folded model has no batch norm left to keep in fp32
        net = net.to(self.device, torch.bfloat16 if self.amp else torch.float32)
        for bn in (m for m in net.modules() if isinstance(m, _BatchNorm)):
            bn.float()  # unfolded batch norm (fold_bn=False) keeps fp32 statistics
        self.channels_last = opts.channels_last
        if self.channels_last:
            # nn.Module.to takes memory_format at runtime; torch's overloads for it leave it out
            net = net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        self.net = net
        self.forward = self._compile()
        first = next((m for m in net.modules() if isinstance(m, nn.Conv3d)), None)
        self._explicit_batch = batch_size is not None
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1; {batch_size} was given")
        self.batch_size = batch_size or (
            default_inference_batch(
                self.grid,
                self.device,
                first_width=first.out_channels if first is not None else 16,
                amp=self.amp,
            )
            if self.grid
            else 64
        )
        self.stats: dict[str, Any] = {}

    def _compile(self) -> _CompiledOrEager:
        graphs = self.options.cuda_graphs and self.device.type == "cuda"
        return maybe_compile(
            self.net,
            option=self.options.compile,
            device=self.device,
            mode="reduce-overhead" if graphs else None,
            what="inference model",
        )

    @property
    def compiled(self) -> bool:
        return self.forward.is_compiled

    def describe(self) -> dict[str, Any]:
        """What the engine does, for logs, bench output and the dashboard."""
        return {
            "device": str(self.device),
            "batch_size": self.batch_size,
            "bf16": self.amp,
            "channels_last": self.channels_last,
            "batchnorm_folded": self.folded > 0,
            "compiled": self.compiled,
            "cuda_graphs": self.compiled
            and self.options.cuda_graphs
            and self.device.type == "cuda",
            "compile_fallback": self.forward.fallback_reason,
        }

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch already on the device (float16/float32, (b, 1, X, Y, Z)); call under
        ``torch.inference_mode()``. On CUDA graphs the result is overwritten by the next call."""
        x = x.to(torch.bfloat16 if self.amp else torch.float32)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.forward(x)

    @torch.inference_mode()
    def predict_proba(
        self, source: VolumeSource, *, progress: Progress | None = None
    ) -> np.ndarray:
        """Class probabilities (n, K) as float32 for every row of ``source``, in order."""
        if len(source) == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        if self.grid and tuple(source.shape) != self.grid:
            raise ConfigError(
                f"the volumes are {tuple(source.shape)} but the model was trained on {self.grid}; "
                "use a cache on the model's grid or retrain"
            )
        while True:
            try:
                return self._run(source, progress)
            except torch.cuda.OutOfMemoryError:
                pass
            # outside the except block: the traceback no longer holds the failed batch's tensors
            torch.cuda.empty_cache()
            if self._explicit_batch or self.batch_size == 1:
                raise gpu_oom_error(self.batch_size, self.device, "--batch-size")
            self.batch_size //= 2
            logger.warning("out of GPU memory; retrying with batch size %d", self.batch_size)
            if self.forward.is_compiled:  # a new shape: start from a fresh compiled wrapper
                self.forward = self._compile()

    def _run(self, source: VolumeSource, progress: Progress | None) -> np.ndarray:
        opts = self.options
        n_total = len(source)
        out = torch.empty((n_total, self.n_classes), dtype=torch.float32, device=self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        done = 0
        every = max(1, n_total // (self.batch_size * 20))
        with cudnn_benchmark(self.device, opts.static_batch):
            for i, (x, _, _, n) in enumerate(
                stream_batches(
                    source,
                    self.batch_size,
                    self.device,
                    prefetch=opts.prefetch,
                    readers=opts.readers,
                    pad_to_batch=opts.static_batch,
                )
            ):
                logits = self.logits(x)
                out[done : done + n] = torch.softmax(logits[:n].float(), dim=1)
                done += n
                if progress is not None and i % every == 0:
                    progress(done / n_total, f"{done} of {n_total} volumes")
        probs = out.cpu().numpy()
        seconds = time.perf_counter() - t0
        self.stats = {
            "volumes": n_total,
            "seconds": seconds,
            "volumes_per_s": n_total / seconds if seconds > 0 else None,
            **self.describe(),
        }
        if self.device.type == "cuda":
            self.stats["peak_gpu_memory_gib"] = peak_gpu_gib(self.device)
        return probs
