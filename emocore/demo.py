"""The embedded demo: a synthetic cohort, its cache and (optionally) a small study, in one call.

Sized for a 2-core laptop: 4 people at 7.2 mm (22 x 29 x 8 voxels), run-wise 4-fold
cross-validation (runs {1,5}, {2,6}, {3,7}, {4,8} held out in turn), 3 epochs with class weights,
and no refit (the leave-one-subject-out models are the stored ones).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from emocore.data.cache import VolumeCache
from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort

__all__ = ["build_demo", "demo_paths", "demo_study_config"]

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def demo_paths(root: str | Path) -> dict[str, Path]:
    root = Path(root)
    return {
        "cohort": root / "cohort",
        "annotations": root / "cohort" / "annotations" / "raw",
        "cache": root / "cache",
        "registry": root / "registry",
    }


def demo_study_config():
    from emocore.experiment import StudyConfig
    from emocore.train import TrainConfig

    # refit=False: the demo keeps the leave-one-subject-out models (each never saw its person),
    # which is what the dashboard's inference uses; refitting every design would add ~30 s.
    return StudyConfig(
        n_folds=4,
        n_permutations=1000,
        refit=False,
        train=TrainConfig(epochs=3, batch_size=32, class_weights=True),
    )


def build_demo(
    root: str | Path, *, train: bool = False, progress: Progress | None = None
) -> dict[str, Path]:
    """Write the demo cohort and cache below ``root`` (reused when already there); train if asked."""
    paths = demo_paths(root)

    def part(lo: float, hi: float, what: str) -> Callable[[int, int, str], None]:
        def inner(done: int, total: int, msg: str) -> None:
            if progress is not None:
                progress(lo + (hi - lo) * done / max(total, 1), f"{what}: {msg}")

        return inner

    share = 0.25 if train else 0.5
    generate_cohort(paths["cohort"], SynthConfig(), progress=part(0.0, share, "synthetic cohort"))
    cache = prepare_cache(
        paths["cohort"],
        paths["annotations"],
        paths["cache"],
        options=PrepareOptions(),
        progress=part(share, 2 * share, "cache"),
    )
    if train:
        from emocore.experiment import run_study
        from emocore.registry import Registry

        registry = Registry(paths["registry"])
        run_id = run_study(
            cache,
            registry,
            demo_study_config(),
            progress=(lambda f, m: progress(0.5 + 0.5 * f, m)) if progress else None,
        )
        paths["run"] = registry.run_dir(run_id)
    return paths


def open_demo_cache(root: str | Path) -> VolumeCache:
    return VolumeCache(demo_paths(root)["cache"])
