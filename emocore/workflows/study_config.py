"""What a study runs: :class:`StudyConfig`, checked when it is made, saved in study.json and the
registry, and read back from them (``emocore train --resume``, a dashboard job).

:mod:`emocore.workflows.study` re-exports it; import it from there or from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from emocore.constants import CLASSES, EMOTIONS
from emocore.data.splits import check_split
from emocore.errors import ConfigError, check_choice, check_known_keys
from emocore.interpret.saliency import DEFAULT_METHOD, METHODS
from emocore.stats.single_case import FOCUS
from emocore.stats.verdict import Primary, default_primary
from emocore.training.baseline import FIXED_C
from emocore.training.designs import DESIGNS
from emocore.training.train import TrainConfig

__all__ = ["StudyConfig"]


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """What a study runs; saved in study.json and the registry."""

    designs: tuple[str, ...] = DESIGNS
    subjects: tuple[str, ...] | None = None
    split: str = "leave-one-run-out"
    n_folds: int | None = None
    include_none: bool = False
    refit: bool | tuple[str, ...] = True  # a final model on all data: every design, none, or these
    baseline: bool = True
    linear_C: float | str = FIXED_C  # the linear baseline's C; "auto": chosen on inner folds
    saliency: bool = True
    saliency_volumes: int = 16  # volumes per emotion each saliency map averages over
    #: the attribution method of the maps (emocore.interpret.saliency.METHODS); configs recorded before
    #: this field existed made integrated gradients, and read so (from_dict)
    saliency_method: str = DEFAULT_METHOD
    n_permutations: int = 1000
    alpha: float = 0.05  # level of every verdict (and of the exploratory, Holm-adjusted tests)
    #: the primary analysis, "DESIGN:MODEL" (e.g. "loso:cnn"); None: the documented default
    #: (emocore.stats.verdict.default_primary): the only design and model whose tests make verdicts
    primary: str | None = None
    #: the emotions of the clinical question: the verdict's order gives them most of alpha
    focus: tuple[str, ...] = FOCUS
    folds: tuple[str, ...] | None = None  # only these folds (e.g. one LOSO subject per job)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.subjects is not None:  # each person once, in the order given (issue 22)
            object.__setattr__(self, "subjects", tuple(dict.fromkeys(self.subjects)))
        bad = [d for d in self.designs if d not in DESIGNS]
        if bad or not self.designs:
            raise ConfigError(
                f"designs must be some of {list(DESIGNS)}; {list(self.designs)} was given"
            )
        if self.folds and len(self.designs) != 1:
            raise ConfigError(
                f"folds select folds of one design; {len(self.designs)} designs were given "
                "(use `emocore train --design loso --fold sub-03`)"
            )
        if self.n_folds is not None and (
            isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) or self.n_folds < 2
        ):
            raise ConfigError(
                f"'n_folds' must be >= 2 (each fold needs other folds to train on) or None for "
                f"one fold per run; {self.n_folds!r} was given. Pass --n-folds 2 or more"
            )
        check_split(self.split)
        if self.n_permutations < 1:
            raise ConfigError(
                f"--permutations (n_permutations) must be at least 1 (chance levels and p-values "
                f"need them); {self.n_permutations} was given"
            )
        if isinstance(self.refit, (list, tuple)):
            object.__setattr__(self, "refit", tuple(self.refit))
            bad = [d for d in self.refit if d not in self.designs]
            if bad:
                raise ConfigError(
                    f"refit names designs the study does not run: {bad}; it runs "
                    f"{list(self.designs)}"
                )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1); {self.alpha} was given")
        object.__setattr__(self, "focus", tuple(str(e).upper() for e in self.focus))
        unknown = [e for e in self.focus if e not in CLASSES]
        if unknown:
            raise ConfigError(
                f"focus names emotions the study does not decode: {unknown}; choose among "
                f"{list(EMOTIONS)} (e.g. --focus LOVE,FEAR)"
            )
        self.primary_analysis()  # a primary analysis the designs cannot produce fails here
        if isinstance(self.saliency_volumes, bool) or not (
            isinstance(self.saliency_volumes, int) and self.saliency_volumes >= 1
        ):
            raise ConfigError(
                "saliency_volumes (volumes per emotion a saliency map averages) must be a whole "
                f"number >= 1; {self.saliency_volumes!r} was given"
            )
        check_choice("saliency_method", self.saliency_method, METHODS)
        if self.linear_C != "auto" and not (
            isinstance(self.linear_C, (int, float))
            and not isinstance(self.linear_C, bool)
            and self.linear_C > 0
        ):
            raise ConfigError(
                f"linear_C must be a positive number or 'auto' (chosen on inner folds); "
                f"{self.linear_C!r} was given"
            )

    def primary_analysis(self) -> Primary:
        """The study's primary analysis: ``primary`` when given, else the documented default
        for its designs (:func:`emocore.stats.verdict.default_primary`)."""
        chosen = Primary.parse(self.primary) if self.primary else default_primary(self.designs)
        chosen.check(self.designs, baseline=self.baseline)
        return chosen

    def is_primary(self, design: str, family: str) -> bool:
        p = self.primary_analysis()
        return p.design == design and p.model == family

    def refits(self, design: str) -> bool:
        """Whether ``design`` keeps a final model trained on all of its data."""
        return design in self.refit if isinstance(self.refit, tuple) else bool(self.refit)

    @property
    def classes(self) -> list[str]:
        return list(CLASSES if self.include_none else EMOTIONS)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyConfig:
        """A study's recorded config; keys this version does not have are refused, naming them
        (no field has been removed since the first version, so an old study.json loads)."""
        check_known_keys(d, cls.__dataclass_fields__, "a study's config")
        known = dict(d)
        known.setdefault("saliency_method", "integrated-gradients")  # what older studies made
        known["train"] = TrainConfig.from_dict(known.get("train", {}))
        known["designs"] = tuple(known.get("designs", DESIGNS))
        for key in ("subjects", "folds", "focus"):
            if known.get(key):
                known[key] = tuple(known[key])
        if "focus" in known and not known["focus"]:
            known["focus"] = ()
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        d["designs"] = list(self.designs)
        d["subjects"] = list(self.subjects) if self.subjects else None
        d["folds"] = list(self.folds) if self.folds else None
        d["focus"] = list(self.focus)
        if isinstance(self.refit, tuple):
            d["refit"] = list(self.refit)
        return d
