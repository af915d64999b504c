"""The embedded demo: a synthetic cohort, its cache and (optionally) a small study, in one call.

The demo answers the clinician's question on a cohort where the answer is known: ten people,
one of them (sub-10) **planted** as atypical, whose LOVE response is mostly their SADNESS
response (like the poster's subject 18). The single-case tests must find sub-10 for LOVE and
flag few of the nine typical people (measured over five generator seeds: see README.md).

Sized for a 2-core laptop (about 3 minutes):

* the cohort: 10 people at 7.2 mm (22 x 29 x 8 voxels), 4 % signal at the patterns' peaks and
  half the generator's default between-person spread of the patterns. With the full spread some
  typical people's weak or displaced LOVE patterns are also decoded as SADNESS by a cohort model
  (up to 40 % of their LOVE volumes), and nine others are too few to tell the planted person
  from them after Holm's correction over 26 tests.
* the study: single-subject (one model per person) and cross-subject (one model for everybody),
  run-wise 2-fold cross-validation (odd runs, then even runs held out), 2 epochs with class
  weights, and one final cross-subject model on all the data (the model the dashboard runs;
  ten final single-subject models would add half a minute).
  Leave-one-subject-out would take ten trainings on nine people each: too slow for the demo
  on a laptop, so ``emocore assess`` on the demo run uses the single-subject design.
* an eleventh, typical person (sub-11) is written to the dataset but left out of the cache: the
  newly scanned person to add with ``emocore prepare --subject 11`` and assess against the
  cohort.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emocore.data.cache import VolumeCache
from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.progress import Progress, part

__all__ = ["DEMO_COHORT", "build_demo", "demo_paths", "demo_study_config", "demo_synth_config"]

logger = logging.getLogger(__name__)


def demo_paths(root: str | Path) -> dict[str, Path]:
    root = Path(root)
    return {
        "cohort": root / "cohort",
        "annotations": root / "cohort" / "annotations" / "raw",
        "cache": root / "cache",
        "registry": root / "registry",
    }


#: People of the demo study; the synthetic cohort has one more, the "new" person.
DEMO_COHORT = tuple(f"{i:02d}" for i in range(1, 11))
DEMO_PLANTED = "10"
DEMO_NEW_PERSON = "11"


def demo_synth_config(seed: int = 0) -> SynthConfig:
    """The demo's synthetic cohort (see the module docstring)."""
    return SynthConfig(
        n_subjects=len(DEMO_COHORT) + 1,
        amplitude=4.0,
        variability=0.5,
        atypical=(DEMO_PLANTED,),
        seed=seed,
    )


def demo_study_config():
    from emocore.study import StudyConfig
    from emocore.train import TrainConfig

    return StudyConfig(
        designs=("single-subject", "cross-subject"),
        n_folds=2,
        n_permutations=1000,
        refit=("cross-subject",),
        train=TrainConfig(epochs=2, batch_size=32, class_weights=True),
    )


def build_demo(
    root: str | Path, *, train: bool = False, seed: int = 0, progress: Progress | None = None
) -> dict[str, Path]:
    """Write the demo cohort and cache below ``root`` (reused when already there); train if asked.

    The cache holds the ten cohort people; the eleventh (the new person) stays in the dataset.
    """
    paths = demo_paths(root)

    share = 0.25 if train else 0.5
    generate_cohort(
        paths["cohort"],
        demo_synth_config(seed),
        progress=part(progress, 0.0, share, "synthetic cohort"),
    )
    cache = prepare_cache(
        paths["cohort"],
        paths["annotations"],
        paths["cache"],
        options=PrepareOptions(),
        subjects=DEMO_COHORT,
        progress=part(progress, share, 2 * share, "cache"),
    )
    if train:
        from emocore.registry import Registry
        from emocore.study import run_study

        registry = Registry(paths["registry"])
        config = demo_study_config()
        if seed:
            from dataclasses import replace

            config = replace(config, train=replace(config.train, seed=seed))
        done = run_study(cache, registry, config, progress=part(progress, 0.5, 1.0))
        paths["run"] = done.folder
    return paths


def open_demo_cache(root: str | Path) -> VolumeCache:
    return VolumeCache(demo_paths(root)["cache"])
