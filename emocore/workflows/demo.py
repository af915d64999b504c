"""The embedded demo: a synthetic cohort, its cache and (optionally) a small study, in one call.

The demo answers the clinician's question on a cohort where the answer is known: ten people,
one of them (sub-10) **planted** as atypical, whose LOVE response is mostly their SADNESS
response (like the poster's subject 18). The study's primary analysis (leave-one-subject-out
CNN, :mod:`emocore.stats.verdict`) must flag sub-10 for LOVE and few of the nine typical people
(measured over five generator seeds: see README.md).

Sized for a 2-core laptop (about 3 minutes):

* the cohort: 10 people at 7.2 mm (22 x 29 x 8 voxels), 4 % signal at the patterns' peaks and
  half the generator's default between-person spread of the patterns. With the full spread some
  typical people's weak or displaced LOVE patterns are also decoded as SADNESS by a cohort model
  (up to 40 % of their LOVE volumes), and nine others are too few to tell the planted person
  from them.
* the study: leave-one-subject-out (ten models, each trained on nine people: the primary
  analysis, and the models a newly scanned person is decoded with) and cross-subject (one
  model for everybody, run-wise 2-fold cross-validation: exploratory), 1 epoch with class
  weights. No final cross-subject model on all the data (15 s more) and no linear baseline
  (its ten LOSO fits and their activation patterns would add a minute); ``emocore study`` runs
  both by default.
* two more people are written to the dataset but left out of the cache: the newly scanned
  people to add and assess against the cohort with ``emocore assess --bids``: sub-11, typical,
  and sub-12, planted like sub-10.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import OtherCohortError, SynthConfig, generate_cohort
from emocore.progress import Progress, monotone, part
from emocore.runs.registry import Registry
from emocore.training.train import TrainConfig
from emocore.workflows.study import StudyConfig, run_study

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


#: People of the demo study; the synthetic cohort has two more, the "new" people.
DEMO_COHORT = tuple(f"{i:02d}" for i in range(1, 11))
DEMO_PLANTED = "10"
#: The newly scanned people (in the dataset, not in the cache): typical, and planted.
DEMO_NEW_TYPICAL = "11"
DEMO_NEW_PLANTED = "12"


def demo_synth_config(seed: int = 0) -> SynthConfig:
    """The demo's synthetic cohort (see the module docstring)."""
    return SynthConfig(
        n_subjects=len(DEMO_COHORT) + 2,
        amplitude=4.0,
        variability=0.5,
        atypical=(DEMO_PLANTED, DEMO_NEW_PLANTED),
        seed=seed,
    )


def demo_study_config():
    return StudyConfig(
        designs=("loso", "cross-subject"),
        n_folds=2,
        n_permutations=1000,
        refit=False,  # LOSO keeps its ten fold models; a cross-subject refit would add 15 s
        baseline=False,
        train=TrainConfig(epochs=1, batch_size=32, class_weights=True),
    )


def build_demo(
    root: str | Path, *, train: bool = False, seed: int = 0, progress: Progress | None = None
) -> dict[str, Path]:
    """Write the demo cohort and cache below ``root`` (reused when already there); train if asked.

    The cache holds the ten cohort people; the two new people stay in the dataset.
    """
    paths = demo_paths(root)
    progress = monotone(progress)  # the study's own steps overlap (see progress.monotone)

    share = 0.25 if train else 0.5
    try:
        generate_cohort(
            paths["cohort"],
            demo_synth_config(seed),
            progress=part(progress, 0.0, share, "synthetic cohort"),
        )
    except OtherCohortError as exc:  # e.g. a demo built before the shared response existed
        raise OtherCohortError(
            f"{paths['cohort']} holds a demo cohort made with other options (another --seed, or "
            f"an earlier emocore version); delete the demo folder {root} and build it again, or "
            "pass another --out"
        ) from exc
    cache = prepare_cache(
        paths["cohort"],
        paths["annotations"],
        paths["cache"],
        options=PrepareOptions(),
        subjects=DEMO_COHORT,
        progress=part(progress, share, 2 * share, "cache"),
    )
    if train:
        registry = Registry(paths["registry"])
        config = demo_study_config()
        if seed:
            config = replace(config, train=replace(config.train, seed=seed))
        done = run_study(cache, registry, config, progress=part(progress, 0.5, 1.0))
        paths["run"] = done.folder
    # the study reports only the start of its last step, and a reused cache nothing at all
    if progress is not None:
        progress(1.0, "the demo is ready" + (f": run {paths['run'].name}" if train else ""))
    return paths
