"""The one place that decides where tensors live: CUDA when there is a GPU, else the CPU."""

from __future__ import annotations

import logging

import torch

from emocore.errors import ConfigError, check_choice

__all__ = ["choose_device", "gpu_summary"]

logger = logging.getLogger(__name__)


def choose_device(requested: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None picks ``cuda`` when available, else ``cpu``; ``"cuda"`` without a GPU is an error."""
    if isinstance(requested, torch.device):
        return requested
    name = (requested or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                "device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    check_choice("device", requested, ("auto", "cpu", "cuda"))
    raise AssertionError("unreachable")


def gpu_summary() -> dict:
    """What the dashboard and ``emocore bench`` show about the accelerator."""
    if not torch.cuda.is_available():
        return {"available": False, "name": None, "count": 0, "torch": torch.__version__}
    props = torch.cuda.get_device_properties(0)
    return {
        "available": True,
        "name": props.name,
        "count": torch.cuda.device_count(),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
    }
