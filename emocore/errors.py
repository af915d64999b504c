"""Errors emocore raises on purpose.

Every message says what was wrong, which file or option it concerns and what to do about it, so
the CLI and the dashboard can show it as it is, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "EmocoreError",
    "DataError",
    "AnnotationError",
    "CacheError",
    "ConfigError",
    "CheckpointError",
    "RegistryError",
]


class EmocoreError(Exception):
    """Base class of the errors emocore raises for bad input or a bad state on disk."""


class DataError(EmocoreError):
    """An fMRI file or folder cannot be used as it is."""


class AnnotationError(DataError):
    """An annotation file cannot be used as it is."""


class CacheError(EmocoreError):
    """The volume cache is missing, stale or damaged."""


class ConfigError(EmocoreError, ValueError):
    """An option has a value emocore cannot use."""


class CheckpointError(EmocoreError):
    """A model checkpoint is missing, damaged or does not fit the data."""


class RegistryError(EmocoreError):
    """The run registry has no such run, or cannot be written."""
