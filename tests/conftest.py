"""Shared fixtures: tiny fake studyforrest trees with unequal sides, written fast."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from emocore.constants import RUN_N_VOLUMES, bold_filename

SHAPE = (7, 8, 9)  # unequal sides, so axis mix-ups fail


def shared_data_dir() -> Path | None:
    """The real annotation folder next to the checkout (../shared), or EMOCORE_SHARED_DATA."""
    env = os.environ.get("EMOCORE_SHARED_DATA")
    path = (
        Path(env)
        if env
        else Path(__file__).resolve().parents[2] / "shared/data/studyforrest-emotions"
    )
    return path if path.is_dir() else None


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def write_run(
    path: Path,
    n_volumes: int,
    *,
    shape=SHAPE,
    affine=None,
    tr: float = 2.0,
    seed: int = 0,
    dtype=np.float32,
) -> Path:
    rng = np.random.default_rng(seed)
    base = np.zeros(shape, np.float32)
    base[1:-1, 1:-1, 1:-1] = 1000.0  # a "brain" box
    data = base[..., None] + rng.normal(0, 10, (*shape, n_volumes)).astype(np.float32) * (
        base[..., None] > 0
    )
    import nibabel as nib  # here, so GPU machines without nibabel can run tests/unit/test_gpu.py

    img = nib.Nifti1Image(
        data.astype(dtype), np.diag([3.0, 3.0, 3.0, 1.0]) if affine is None else affine
    )
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = tr
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def write_annotations(folder: Path) -> Path:
    """Nine audio-visual observers who all agree on a few episodes, plus a scenes file."""
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    episodes = [
        (100, 140, "FEAR"),
        (900, 950, "HAPPINESS"),
        (2000, 2040, "SADNESS"),
        (4000, 4030, "LOVE"),
        (5000, 5020, "ANGERRAGE"),
    ]
    header = "start,end,character,arousal,valence,direction,emotion,oncue,offcue\n"
    for i in range(1, 10):
        rows = [f"{a}.0,{b}.0,FORREST,HIGH,NEG,SELF,{e},FACE,EMOFADED\n" for a, b, e in episodes]
        (raw / f"av1o{i:02d}.csv").write_text(header + "".join(rows))
    (folder / "movie_scenes.csv").write_text(
        "0.0,SAVANNAH,DAY,EXT\n1000.0,VIETNAM,NIGHT,EXT\n4000.0,WASHINGTON,DAY,EXT\n"
    )
    return raw


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Two subjects x 8 runs of real length on a 7x8x9 grid, and matching annotations."""
    root = tmp_path / "ds"
    for s, subject in enumerate(("01", "02")):
        for run, n in enumerate(RUN_N_VOLUMES, start=1):
            write_run(root / bold_filename(subject, run), n, seed=10 * s + run)
    ann = write_annotations(tmp_path / "annotations")
    return root, ann


class ArrayCache:
    """An in-memory stand-in for VolumeCache (grid_shape, read, array), for model and training tests."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.grid_shape = next(iter(arrays.values())).shape[1:]

    def read(self, subject: str, rows) -> np.ndarray:
        return self.arrays[subject][np.asarray(rows)]

    def array(self, subject: str) -> np.ndarray:
        return self.arrays[subject]


def planted_volumes(
    n_per_class: int, n_classes: int = 3, *, shape=SHAPE, signal: float = 1.0, seed: int = 0
):
    """Volumes with one planted blob per class (or pure noise with signal=0) and their metadata."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(y)
    x = rng.normal(0, 1, (len(y), *shape)).astype(np.float32)
    for c in range(n_classes):
        x[y == c, 1 + 2 * c : 3 + 2 * c, 2:5, 3:6] += signal * 3.0
    meta = pd.DataFrame(
        {"subject": "01", "row": np.arange(len(y)), "y": y, "run": 1 + np.arange(len(y)) % 4}
    )
    return ArrayCache({"01": x.astype(np.float16)}), meta


def build_tiny_home(root: Path) -> Path:
    """cohort/, cache/ and registry/ with one finished tiny study, in the layout `emocore demo` makes."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.demo import demo_paths
    from emocore.experiment import StudyConfig, run_study
    from emocore.registry import Registry
    from emocore.train import TrainConfig

    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    config = StudyConfig(
        n_folds=2,
        n_permutations=50,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    run_study(cache, Registry(paths["registry"]), config)
    return root
