"""What a study saves in study.json, typed, and how a file of an older emocore is read.

study.json carries ``schema_version``; a file without it was written before the key existed
and is version 1. :func:`upgrade_study` brings a file of any older version to
:data:`STUDY_SCHEMA_VERSION` in ordered steps (:data:`UPGRADES`, one per version, as the
registry migrates its SQLite tables in :mod:`emocore.runs.database`), filling in what the
older runs meant where the older format left it unsaid. Readers then see one format, and the
knowledge of older formats lives here instead of at each place that reads a key.

What an older run never computed (verdicts, single-case findings, the rows of its prediction
tables) is not filled in: those keys stay absent, and the readers that compute them from the
stored predictions, or say that the run predates them, still tell by their absence.

:class:`StudyRecord` is the file's top level as a dataclass for new code; the nested records
(config, results rows, saliency entries) stay plain JSON objects. The config has its own class,
:class:`emocore.workflows.study.StudyConfig`, one layer above this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from emocore import __version__
from emocore.errors import ConfigError, EmocoreError, check_known_keys
from emocore.stats.single_case import ALPHA
from emocore.stats.verdict import Primary, default_primary

__all__ = [
    "STUDY_SCHEMA_VERSION",
    "UPGRADES",
    "StudyRecord",
    "study_version",
    "upgrade_study",
]

#: The format of study.json this emocore writes. Bump it with a step in :data:`UPGRADES`
#: whenever what a study saves changes in a way a reader must know of.
STUDY_SCHEMA_VERSION = 2

#: What a saliency map was made with when its record does not say: integrated gradients, the
#: only method before ``saliency_method`` existed.
OLDER_SALIENCY_METHOD = "integrated-gradients"


def study_version(raw: dict[str, Any], where: object = "study.json") -> int:
    """The format version of a study.json (1 without the key); EmocoreError naming ``where``
    for a version that is not a whole number >= 1 or newer than this emocore reads."""
    version = raw.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise EmocoreError(
            f"{where} is damaged: its schema_version is {version!r}, not a whole number >= 1; "
            "restore it from a backup or re-run the study"
        )
    if version > STUDY_SCHEMA_VERSION:
        raise EmocoreError(
            f"{where} has schema version {version}, newer than this emocore's "
            f"{STUDY_SCHEMA_VERSION} (emocore {__version__}): it was written by a newer emocore; "
            "upgrade emocore to read it"
        )
    return version


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects among the values of ``value`` (none unless it is an object itself)."""
    return [v for v in value.values() if isinstance(v, dict)] if isinstance(value, dict) else []


def _to_v2(study: dict[str, Any]) -> None:
    """Version 1 (no ``schema_version``): fill in what runs made before each key meant."""
    config = study.get("config")
    if isinstance(config, dict):  # a study made before --saliency-method made integrated gradients
        config.setdefault("saliency_method", OLDER_SALIENCY_METHOD)
    else:
        config = {}
    results = [r for r in study.get("results") or [] if isinstance(r, dict)]
    for row in results:  # a headline row of a study made before the linear rows is the CNN's
        row.setdefault("model", "cnn")
    for models in _objects(study.get("saliency")):  # design -> model -> emotion -> entry
        for maps in _objects(models):
            for entry in _objects(maps):  # a map made before the method was recorded
                entry.setdefault("method", OLDER_SALIENCY_METHOD)
    # the level of the tests, before the study recorded it: the default
    study.setdefault("alpha", ALPHA)
    if not study.get("primary"):
        # before primary analyses were named, the default for the study's designs is read as
        # the primary analysis, marked as such ("older run") for the pages that explain it
        designs = config.get("designs") or [r.get("design") for r in results]
        try:
            fallback = default_primary(designs)
        except ConfigError:  # no design to fall back on: RunResults.primary says so
            pass
        else:
            study["primary"] = Primary(fallback.design, fallback.model, how="older run").to_dict()
    # records of the study as a whole that were added later: empty for a study made before
    for key in (
        "saliency",
        "train_volumes_per_s",
        "peak_gpu_memory_gib",
        "tuning",
        "saliency_checks",
    ):
        study.setdefault(key, {})
    study.setdefault("embeddings", None)


#: The step that brings study.json from the version before to each version, in order.
UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {2: _to_v2}


def upgrade_study(raw: dict[str, Any], where: object = "study.json") -> dict[str, Any]:
    """``raw`` (a study.json's object) in the current format.

    A current file is returned as it is; an older one is copied and brought up to date step by
    step, so ``raw`` itself is never changed. ``where`` names the file in errors (a version
    newer than this emocore reads, or a damaged one).
    """
    version = study_version(raw, where)
    if version == STUDY_SCHEMA_VERSION:
        return raw
    study = copy.deepcopy(raw)
    for target in range(version + 1, STUDY_SCHEMA_VERSION + 1):
        UPGRADES[target](study)
    study["schema_version"] = STUDY_SCHEMA_VERSION
    return study


#: Keys whose absence says the run did not compute them (see the module docstring); to_dict
#: leaves them out when they are None, so a written record reads back the same.
_ABSENT_WHEN_NONE = ("primary", "verdicts", "atypical", "stability", "tables", "run_id")


@dataclass(kw_only=True)
class StudyRecord:
    """study.json's top level (the current format; see :func:`upgrade_study` for older ones)."""

    schema_version: int = STUDY_SCHEMA_VERSION
    run_id: str | None = None
    emocore_version: str | None = None
    #: the volume cache the study read: ``path``, ``key`` (its data version), ``grid``, ``options``
    cache: dict[str, Any] = field(default_factory=dict)
    #: :meth:`emocore.workflows.study.StudyConfig.to_dict`
    config: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    #: headline rows, one per design and model family (:func:`emocore.workflows.study.headline_row`)
    results: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = ALPHA
    #: :meth:`emocore.stats.verdict.Primary.to_dict`; None for a run with no design to analyse
    primary: dict[str, Any] | None = None
    #: None: not recorded (the run predates verdicts / single-case findings)
    verdicts: list[dict[str, Any]] | None = None
    atypical: list[dict[str, Any]] | None = None
    stability: list[dict[str, Any]] | None = None
    seconds: float | None = None
    #: design -> model -> emotion -> the map's entry (file, method, checks, linear pattern)
    saliency: dict[str, Any] = field(default_factory=dict)
    embeddings: dict[str, Any] | None = None
    train_volumes_per_s: dict[str, Any] = field(default_factory=dict)
    peak_gpu_memory_gib: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    saliency_checks: dict[str, Any] = field(default_factory=dict)
    #: rows of the prediction tables as written (:func:`emocore.runs.bundle.table_rows`)
    tables: dict[str, Any] | None = None

    @property
    def primary_analysis(self) -> Primary | None:
        """The recorded primary analysis as :class:`~emocore.stats.verdict.Primary`."""
        return Primary.from_dict(self.primary)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: object = "study.json") -> StudyRecord:
        """A study.json of any version this emocore reads (upgraded first); keys the current
        format does not have are refused, naming them."""
        study = upgrade_study(d, where)
        check_known_keys(study, cls.__dataclass_fields__, f"{where}")
        return cls(**study)

    def to_dict(self) -> dict[str, Any]:
        """The record as study.json holds it (keys in the order of the fields)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _ABSENT_WHEN_NONE:
                continue
            out[f.name] = value
        return out
