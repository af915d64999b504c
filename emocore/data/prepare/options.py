"""What a prepare call is asked for (:class:`PrepareOptions`) and what it did
(:class:`PrepareResult`).

The options are checked when they are made, with messages that name them as ``emocore prepare``
spells them; a cache's manifest records them, and :func:`cleaning_sentence` says in words what
they removed from each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emocore.data.cache import VolumeCache
from emocore.data.clean import parse_confounds
from emocore.data.labels import check_lag
from emocore.errors import CacheError, ConfigError, check_choice


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    """How the cache is made; saved in the manifest.

    Which files: ``task``, ``acq``, ``space`` and ``desc`` choose among BIDS entities (see
    :func:`~emocore.data.bids.discover_dataset`). What is removed from every voxel's time series
    before z-scoring (see :mod:`emocore.data.clean`): a linear trend (``detrend``), cosine drift
    below ``high_pass`` Hz (None: none) and, for fMRIPrep input, the ``confounds`` strategy of
    ``nilearn.interfaces.fmriprep.load_confounds`` (e.g. ``'motion,wm_csf'``).
    """

    grid_mm: float | None = None
    lag_s: float = 4.0
    recipe: str = "poster"
    observers: str | None = None
    nonfinite: str = "error"  # or "zero"
    task: str | None = None
    acq: str | None = None
    space: str | None = None
    desc: str | None = None
    detrend: bool = True
    high_pass: float | None = 0.008
    confounds: str | None = None

    def __post_init__(self) -> None:
        # The messages name the options as `emocore prepare` spells them (--grid-mm), which is
        # what a user of the CLI or the dashboard typed; the field names follow in brackets.
        if self.grid_mm is not None and not 0.5 <= self.grid_mm <= 20:
            raise ConfigError(
                f"--grid-mm (grid_mm) must be a voxel size from 0.5 to 20 mm, or left out to keep "
                f"the data's own grid; {self.grid_mm} was given"
            )
        object.__setattr__(self, "lag_s", check_lag(self.lag_s))
        check_choice("nonfinite", self.nonfinite, ("error", "zero"))
        if self.high_pass is not None and not 0.0 < self.high_pass < 0.25:
            raise ConfigError(
                f"--high-pass (high_pass) must be a cut-off in Hz above 0 and below the Nyquist "
                f"frequency of a 2-s TR (0.25 Hz), or 0 (None) for no high-pass; "
                f"{self.high_pass} was given (0.008 Hz, a 125-s period, is usual)"
            )
        if not isinstance(self.detrend, bool):
            raise ConfigError(
                f"--detrend/--no-detrend (detrend) must be True or False; {self.detrend!r} was given"
            )
        confounds = parse_confounds(self.confounds)
        object.__setattr__(self, "confounds", ",".join(confounds) or None)

    @classmethod
    def from_manifest(cls, options: dict[str, Any]) -> PrepareOptions:
        """The options a cache's manifest records; caches made before drift removal existed
        (no ``detrend`` recorded) were made without it, and read so. Options prepare does not
        know (a cache laid out by ``create_cache`` for a benchmark) are a CacheError."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise CacheError(
                f"the cache's manifest records options prepare does not know ({', '.join(unknown)}"
                "): it was not made by `emocore prepare` (a benchmark cache?), so people cannot "
                "be added to it the way it was made. Build a cache with `emocore prepare`"
            )
        try:
            return cls(**{**BEFORE_CLEANING, **options})
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise CacheError(
                f"the options the cache's manifest records cannot be used ({exc}); rebuild the "
                "cache with `emocore prepare --force`"
            ) from exc

    @property
    def cleaning(self) -> dict[str, Any]:
        """What is removed from each run, in the words of ``nilearn.signal.clean``."""
        return {
            "detrend": self.detrend,
            "high_pass_hz": self.high_pass,
            "filter": "cosine" if self.high_pass is not None else None,
            "confounds": self.confounds,
            "standardize": "zscore per run and voxel, after the regressors above",
        }

    @property
    def entities(self) -> dict[str, str | None]:
        return {"task": self.task, "acq": self.acq, "space": self.space, "desc": self.desc}


def cleaning_sentence(options: dict[str, Any]) -> str:
    """What a cache's recorded ``options`` removed from each run, in words (for pages and CLI)."""
    options = {**BEFORE_CLEANING, **options}
    parts = ["linear trend"] if options.get("detrend") else []
    if options.get("high_pass") is not None:
        parts.append(f"drift slower than {options['high_pass']:g} Hz (cosine)")
    if options.get("confounds"):
        parts.append(f"fMRIPrep confounds ({options['confounds']})")
    removed = ", ".join(parts) + " removed" if parts else "mean removed only (no drift removal)"
    return f"{removed}, then z-scored per voxel"


#: Options a manifest written before they existed means (nothing was removed, no entity chosen).
BEFORE_CLEANING: dict[str, Any] = {
    "detrend": False,
    "high_pass": None,
    "confounds": None,
    "acq": None,
    "space": None,
    "desc": None,
}


@dataclass(frozen=True)
class PrepareResult:
    """What one :func:`prepare` call did to the cache, for logs and the CLI summary."""

    cache: VolumeCache
    action: str  # "built", "added", "relabelled" or "unchanged"
    added: tuple[str, ...] = ()  # people who were not in the cache before
    streamed: tuple[str, ...] = ()  # people whose runs were read and written by this call
    kept: tuple[str, ...] = ()  # people whose arrays were left exactly as they were
    not_requested: tuple[str, ...] = ()  # people in the cache that were not asked for, kept
    dropped: tuple[str, ...] = ()  # people a ``force`` rebuild left out

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "added": list(self.added),
            "streamed": list(self.streamed),
            "kept": list(self.kept),
            "not_requested": list(self.not_requested),
            "dropped": list(self.dropped),
        }
