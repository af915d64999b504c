"""The generator's options (:class:`SynthConfig`), the field of view and the random streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from emocore.errors import ConfigError, DataError, check_choice


class OtherCohortError(DataError):
    """The output folder already holds a synthetic cohort made with other options."""


#: Field of view in MNI mm (x, y, z): the brain in x and y, a slab in z covering the amygdala,
#: insula, superior temporal gyrus, orbitofrontal cortex, ACC and temporal poles. At 1.2 mm it is
#: exactly the 132 x 175 x 48 grid of the studyforrest derivative; at 7.2 mm it is 22 x 29 x 8.
FOV_LOW_MM: tuple[float, float, float] = (-79.2, -122.0, -34.0)
FOV_EXTENT_MM: tuple[float, float, float] = (158.4, 210.0, 57.6)
FORMAT = 1  # bump when the generator's output changes, so old cohorts count as different
BLOCK_VALUES = 2**24  # voxel values computed at once (64 MiB as float32)

#: Where the BOLD files go (see the package docstring).
LAYOUTS: tuple[str, ...] = ("derivative", "raw", "fmriprep")
# Options added after cohorts were first written, with the value that reproduces those cohorts.
ADDED_OPTIONS = {
    "layout": "derivative",
    "motion": 0.0,
    "drift": 1.0,
    "shared": 0.0,
    "shared_emotion": 0.0,
}


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Options of the generator; saved in ``ground_truth/cohort.json``.

    ``amplitude`` is the % signal change at a pattern's peak for a sustained episode at
    ``signal=1``. ``atypical`` names the people whose LOVE response is mostly their SADNESS
    pattern; by default the last person (sub-18 in a cohort of 18 or more), none for one person
    (an empty tuple plants nobody). ``atypical_weight`` is the share of their LOVE pattern taken
    from their SADNESS pattern (1 = their LOVE response is their SADNESS response).
    ``variability`` scales the between-person spread of every pattern (shift and log-gain SDs;
    1 = the defaults above, 0 = everybody's patterns alike).

    ``layout`` is where the BOLD files go: ``"derivative"`` (the ds000113 aligned derivative),
    ``"raw"`` (OpenNeuro ds000113: ``acq-dico`` and ``acq-raw``) or ``"fmriprep"`` (an fMRIPrep
    derivative with a brain mask and a confounds table); the BOLD data are the same in all three.
    ``motion`` is the head-motion noise (% signal RMS over the brain at 1; 0 = none); ``None``
    means 1.0 for the fmriprep layout, whose confounds table holds the motion traces, and 0.0
    otherwise. ``drift`` scales the slow cosine drift of each run (1 = as before; real scanner
    drift is far larger). ``motion=0``, ``drift=1`` and ``shared=0`` give the BOLD data of
    earlier versions. :meth:`replace` resolves a defaulted ``motion`` again for a new ``layout``.

    ``shared`` is the response to the movie that every person shares (see the package docstring),
    as its standard deviation in % signal change at the auditory peak of a typical person's map
    (the units of ``amplitude`` and ``noise``; 0 = none). Real data: during naturalistic listening
    the auditory cortex's inter-subject correlation (ISC) is high, roughly 0.3-0.6 (Hasson et al.
    2004; Lerner et al. 2011; the region-averaged, leave-one-out ISC in early auditory cortex of
    the Narratives stories, Nastase et al. 2021), lower in language and default-mode areas and
    near 0 where nothing follows the stimulus. The default 0.8 assumes a typical listener:
    measured on default cohorts (4 people, 7.2 mm, noise 1, high-pass 1/128 Hz) it gives a
    region-averaged leave-one-out ISC of about 0.55 over the auditory blobs (a voxel's pairwise
    ISC about 0.15-0.2 there), about 0.3 on the network and about 0.05 elsewhere (from the
    emotion responses, which the movie's timeline also shares); with ``shared=0`` the auditory
    value is about 0.13. ``shared_emotion`` (0-1, default 0: the soundtrack ignores the
    emotions) is the share of the shared response's variance that follows the emotion
    regressors, so a model can learn the emotions from the shared response alone, with no
    person's own patterns; it needs ``shared`` > 0 and has no effect at ``signal=0``.
    """

    n_subjects: int = 4
    grid_mm: float = 7.2
    seed: int = 0
    signal: float = 1.0
    noise: float = 1.0
    amplitude: float = 2.0
    atypical: tuple[str, ...] | None = None
    atypical_weight: float = 0.85
    variability: float = 1.0
    layout: str = "derivative"
    motion: float | None = None
    drift: float = 1.0
    shared: float = 0.8
    shared_emotion: float = 0.0
    _motion_defaulted: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def check(ok: bool, option: str, allowed: str, given: object) -> None:
            if not ok:
                raise ConfigError(f"'{option}' must be {allowed}; {given!r} was given")

        n = self.n_subjects
        check(isinstance(n, int) and 1 <= n <= 99, "n_subjects", "an integer in 1..99", n)
        check(1.0 <= self.grid_mm <= 20.0, "grid_mm", "between 1.0 and 20.0 (mm)", self.grid_mm)
        check(isinstance(self.seed, int) and self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(0.0 <= self.signal <= 100.0, "signal", "between 0 and 100 (0 = none)", self.signal)
        check(0.0 <= self.noise <= 100.0, "noise", "between 0 and 100", self.noise)
        check(0.0 < self.amplitude <= 20.0, "amplitude", "in (0, 20] (% signal)", self.amplitude)
        w = self.atypical_weight
        check(0.0 <= w <= 1.0, "atypical_weight", "between 0 and 1", w)
        v = self.variability
        check(0.0 <= v <= 5.0, "variability", "between 0 and 5 (1 = default spread)", v)
        check_choice("layout", self.layout, LAYOUTS)
        m = self.motion
        if m is None:
            m = 1.0 if self.layout == "fmriprep" else 0.0
            object.__setattr__(self, "motion", m)
            object.__setattr__(self, "_motion_defaulted", True)
        check(0.0 <= m <= 100.0, "motion", "between 0 and 100 (% signal; 0 = none)", m)
        d = self.drift
        check(0.0 <= d <= 100.0, "drift", "between 0 and 100 (1 = default drift)", d)
        c = self.shared
        check(0.0 <= c <= 100.0, "shared", "between 0 and 100 (% signal SD; 0 = none)", c)
        f = self.shared_emotion
        check(0.0 <= f <= 1.0, "shared_emotion", "between 0 and 1 (a share of variance)", f)
        if f > 0 and c == 0:
            raise ConfigError(
                f"'shared_emotion' {f!r} has no effect with 'shared' 0 (no shared response); "
                "set 'shared' (--shared) above 0 or leave 'shared_emotion' at 0"
            )
        if self.atypical is not None:
            object.__setattr__(self, "atypical", tuple(str(s) for s in self.atypical))
            allowed = {f"{i:02d}" for i in range(1, n + 1)}
            bad = [s for s in self.atypical if s not in allowed]
            check(not bad, "atypical", f"a list of subjects 01..{n:02d}", bad)

    @classmethod
    def full_size(cls, **overrides: Any) -> SynthConfig:
        """The real study's size: 20 people on the 132 x 175 x 48 grid (1.2 mm)."""
        return cls(**{"n_subjects": 20, "grid_mm": 1.2, **overrides})

    def replace(self, **changes: Any) -> SynthConfig:
        """A copy with some options changed (validated again); a ``motion`` that was not given
        is resolved again (so ``replace(layout="fmriprep")`` gets the fmriprep default)."""
        if self._motion_defaulted and "motion" not in changes:
            changes["motion"] = None
        return replace(self, **changes)

    @property
    def subjects(self) -> list[str]:
        return [f"{i:02d}" for i in range(1, self.n_subjects + 1)]

    @property
    def atypical_subjects(self) -> list[str]:
        if self.atypical is not None:
            return list(self.atypical)
        if self.n_subjects == 1:
            return []
        return ["18"] if self.n_subjects >= 18 else [self.subjects[-1]]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; ``atypical`` resolved to the subjects it means, ``motion`` to its
        value."""
        d = asdict(self) | {"atypical": self.atypical_subjects}
        del d["_motion_defaulted"]
        return d


def grid_for(grid_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine (voxel centres, MNI mm) of the field of view at ``grid_mm``."""
    shape = tuple(max(2, round(e / grid_mm)) for e in FOV_EXTENT_MM)
    affine = np.diag([grid_mm, grid_mm, grid_mm, 1.0])
    affine[:3, 3] = np.asarray(FOV_LOW_MM) + grid_mm / 2
    return shape, affine  # type: ignore[return-value]


def random_stream(cfg: SynthConfig, subject: int, run: int) -> np.random.Generator:
    """Stream for (seed, subject, run); subject 0 is the cohort, run 0 the person's patterns."""
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, subject, run, FORMAT]))
