"""Errors emocore raises on purpose.

Every message says what was wrong, which file or option it concerns and what to do about it, so
the CLI and the dashboard can show it as it is, without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "EXIT_CODES",
    "check_choice",
    "listed",
    "exit_code",
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


def listed(names: Iterable[Any], *, limit: int = 10) -> str:
    """``names`` joined by ', ' for a message, the first ``limit`` of them and then 'and N
    more': an error about 5,000 subject labels stays one line, not 30 KB."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_known_keys(record: Any, known: Iterable[str], what: str) -> None:
    """Refuse a recorded configuration (``what``, e.g. "a study's config") holding keys its
    class does not have: a key of a newer emocore, or one mistyped by hand, would otherwise be
    dropped without a word and the run re-created with other settings than it recorded."""
    if not isinstance(record, dict):
        raise ConfigError(f"{what} must be a JSON object; {type(record).__name__} was found")
    unknown = sorted(set(record) - set(known))
    if unknown:
        raise ConfigError(
            f"{what} holds keys this emocore does not know: {listed(unknown)} (known: "
            f"{listed(sorted(known), limit=50)}); it was written by a newer emocore or edited by "
            "hand: use the emocore that wrote it, or remove those keys"
        )


def check_choice(
    name: str,
    value: Any,
    allowed: Iterable[Any],
    *,
    optional: bool = False,
    error: type[EmocoreError] | None = None,
) -> None:
    """ConfigError (or ``error``) unless ``value`` is one of ``allowed`` (or None with
    ``optional``): the message names the option, lists what is allowed, quotes what was given
    and suggests the closest allowed value ("did you mean 'loso'?")."""
    allowed = list(allowed)
    if (value is None and optional) or value in allowed:
        return
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    choices = ", ".join(repr(a) for a in allowed) + (" or None" if optional else "")
    raise (error or ConfigError)(f"'{name}' must be one of {choices}; {value!r} was provided{hint}")


#: Exit codes of the ``emocore`` command, by what went wrong (documented in ``emocore --help``).
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "usage": 2,  # argparse: an unknown option or a missing argument
    "config": 3,  # an option has a value emocore cannot use (ConfigError)
    "data": 4,  # a data file, the cache, a checkpoint or a run's files cannot be used; disk errors
    "registry": 5,  # no such run, a run in the wrong state, or the registry cannot be written
    "interrupted": 130,  # Ctrl-C (128 + SIGINT)
}


def exit_code(exc: BaseException) -> int:
    """The exit code of the ``emocore`` command for an error it reports (see :data:`EXIT_CODES`)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_CODES["interrupted"]
    if isinstance(exc, ConfigError):
        return EXIT_CODES["config"]
    if isinstance(exc, RegistryError):
        return EXIT_CODES["registry"]
    return EXIT_CODES["data"]  # DataError, CacheError, CheckpointError, damaged run files, OSError
