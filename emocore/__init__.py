"""emocore: decode portrayed emotion from single fMRI volumes, honestly."""

from __future__ import annotations

__version__ = "0.1.0"

from emocore.errors import (
    AnnotationError,
    CacheError,
    CheckpointError,
    ConfigError,
    DataError,
    EmocoreError,
    RegistryError,
)

__all__ = [
    "__version__",
    "EmocoreError",
    "DataError",
    "AnnotationError",
    "CacheError",
    "ConfigError",
    "CheckpointError",
    "RegistryError",
]
