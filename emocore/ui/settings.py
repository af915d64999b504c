"""Where the dashboard finds its data: one frozen :class:`Settings`, from the environment.

Four roots, each from an environment variable, else from ``emocore.toml`` in the working
directory (same keys, lower case), else a default::

    home         EMOCORE_HOME          ./emocore-data
    cache        EMOCORE_CACHE         <home>/cache
    registry     EMOCORE_REGISTRY      <home>/registry
    annotations  EMOCORE_ANNOTATIONS   the cache manifest's source annotations,
                                       else <home>/cohort/annotations/raw

``emocore.toml`` may hold the keys at the top level or under ``[emocore]``; relative paths in it
are relative to the file's folder. Environment variables win. The dashboard lists and reads
nothing outside these roots. No streamlit here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emocore.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: environment variables only
    tomllib = None  # type: ignore[assignment]

__all__ = ["CONFIG_FILE", "ENV_VARS", "Settings"]

CONFIG_FILE = "emocore.toml"
#: setting -> environment variable
ENV_VARS: dict[str, str] = {
    "home": "EMOCORE_HOME",
    "cache": "EMOCORE_CACHE",
    "registry": "EMOCORE_REGISTRY",
    "annotations": "EMOCORE_ANNOTATIONS",
}
_DEMO_HINT = (
    "press 'Build the demo' on the Overview page, or run `emocore demo --train` in a terminal"
)


def _read_toml(path: Path) -> dict[str, Path]:
    """The path keys of ``emocore.toml`` (top level or ``[emocore]``), resolved against its folder."""
    if tomllib is None:
        raise ConfigError(
            f"{path} needs Python 3.11 or newer (tomllib); set EMOCORE_HOME etc. instead"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it or delete it") from exc
    table = data.get("emocore", data)
    unknown = sorted(set(table) - set(ENV_VARS) - {"emocore"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; the keys are {', '.join(ENV_VARS)}")
    out = {}
    for key in ENV_VARS:
        if key in table:
            value = Path(str(table[key])).expanduser()
            out[key] = value if value.is_absolute() else path.parent / value
    return out


def _manifest_annotations(cache: Path) -> tuple[Path | None, str | None]:
    """The annotation folder the cache's manifest records, and a note when it cannot be found.

    Manifests record absolute paths; older ones hold the folder relative to where ``prepare``
    ran, which is looked up among the absolute folders the cache's dataset_description.json
    lists (:func:`emocore.data.cache.recorded_path`)."""
    try:
        manifest = json.loads((cache / "manifest.json").read_text())
        value = manifest.get("source", {}).get("annotations")
    except (OSError, ValueError, AttributeError):
        return None, None
    if not isinstance(value, str) or not value:
        return None, None
    from emocore.data.cache import recorded_path  # here: settings stays light to import

    found = recorded_path(cache, value)
    if found is not None:
        return found, None
    return Path(value), (
        f"the cache's manifest ({cache / 'manifest.json'}) records the annotation folder as "
        f"'{value}', relative to the folder `emocore prepare` ran in, and it is not found from "
        f"here ({Path.cwd()}); set EMOCORE_ANNOTATIONS to the folder holding av1o01.csv ... "
        "(labs2015-emotionannotation/data/raw), or re-run `emocore prepare` with the cache's "
        "--bids, --annotations and --cache: it records absolute paths"
    )


@dataclass(frozen=True)
class Settings:
    """The dashboard's data roots (see the module docstring for where each comes from)."""

    home: Path
    cache: Path
    registry: Path
    annotations: Path
    #: Why the annotation folder the cache's manifest records cannot be found, if it cannot.
    annotations_note: str | None = field(default=None, compare=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, cwd: str | Path | None = None
    ) -> Settings:
        """Settings from ``env`` (default ``os.environ``) and ``<cwd>/emocore.toml``."""
        env = os.environ if env is None else env
        folder = Path.cwd() if cwd is None else Path(cwd)
        toml = folder / CONFIG_FILE
        given: dict[str, Path] = _read_toml(toml) if toml.is_file() else {}
        for key, var in ENV_VARS.items():
            if env.get(var, "").strip():
                given[key] = Path(env[var]).expanduser()
        home = given.get("home", folder / "emocore-data")
        cache = given.get("cache", home / "cache")
        registry = given.get("registry", home / "registry")
        annotations, note = given.get("annotations"), None
        if annotations is None:
            annotations, note = _manifest_annotations(cache)
        return cls(
            home=home,
            cache=cache,
            registry=registry,
            annotations=annotations or home / "cohort" / "annotations" / "raw",
            annotations_note=note,
        )

    @property
    def is_demo(self) -> bool:
        """Whether ``home`` has the layout `emocore demo` makes (a synthetic cohort beside the cache)."""
        return (self.home / "cohort" / "ground_truth").is_dir()

    @property
    def has_cache(self) -> bool:
        return (self.cache / "manifest.json").is_file()

    @property
    def has_registry(self) -> bool:
        return (self.registry / "registry.sqlite").is_file()

    def describe(self) -> dict[str, Any]:
        """Plain-JSON form, for the Overview page and reports."""
        return {
            "home": str(self.home),
            "cache": str(self.cache),
            "registry": str(self.registry),
            "annotations": str(self.annotations),
            "demo": self.is_demo,
        }

    def check(self) -> list[str]:
        """Human-readable problems with the configured roots (empty when all is in place)."""
        problems = []
        if not self.home.is_dir():
            problems.append(
                f"the data folder {self.home} (EMOCORE_HOME) does not exist; {_DEMO_HINT}"
            )
        if not self.has_cache:
            fix = (
                _DEMO_HINT
                if self.is_demo or not self.home.is_dir() or not any(self.home.iterdir())
                else "build it with `emocore prepare --bids DIR --annotations DIR "
                f"--cache {self.cache}`, or {_DEMO_HINT}"
            )
            problems.append(f"no volume cache at {self.cache} (manifest.json missing); {fix}")
        if not self.has_registry:
            problems.append(
                f"no run registry at {self.registry} yet; train a model on the Retrain page, "
                f"or {_DEMO_HINT}"
            )
        if not self.annotations.is_dir():
            problems.append(
                self.annotations_note
                or f"no annotation folder at {self.annotations}; set EMOCORE_ANNOTATIONS to the "
                "folder holding av1o01.csv ... (labs2015-emotionannotation/data/raw)"
            )
        return problems
