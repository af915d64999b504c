"""Shared fixtures: tiny fake studyforrest trees with unequal sides, written fast."""

from __future__ import annotations

import os
import shutil
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


#: Test folders whose every test is slow (trains, drives the dashboard or a browser).
SLOW_KINDS = {"app", "integration", "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test is marked with its kind, the folder it is in (unit, faults, app, integration,
    e2e), and the kinds of SLOW_KINDS also as slow: `-m "not slow"` is the fast tier. Sweeps
    run only when the -m expression names them (`-m sweep`), whatever else it says."""
    tests = Path(__file__).resolve().parent
    if "sweep" not in (config.getoption("markexpr") or ""):
        sweeps = [item for item in items if item.get_closest_marker("sweep")]
        if sweeps:
            config.hook.pytest_deselected(items=sweeps)
            items[:] = [item for item in items if not item.get_closest_marker("sweep")]
    for item in items:
        try:
            parts = item.path.resolve().relative_to(tests).parts
        except ValueError:
            continue
        if len(parts) < 2:  # a test module directly in tests/ has no kind
            continue
        kind = parts[0]
        item.add_marker(getattr(pytest.mark, kind))
        if kind in SLOW_KINDS:
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def tiny_dataset_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two subjects x 8 runs of real length on a 7x8x9 grid, and matching annotations, written
    once per session (about 3 s on 2 cores); tests get a copy through :func:`tiny_dataset`."""
    folder = tmp_path_factory.mktemp("tiny-dataset")
    for s, subject in enumerate(("01", "02")):
        for run, n in enumerate(RUN_N_VOLUMES, start=1):
            write_run(folder / "ds" / bold_filename(subject, run), n, seed=10 * s + run)
    write_annotations(folder / "annotations")
    return folder


@pytest.fixture
def tiny_dataset(tmp_path: Path, tiny_dataset_source: Path) -> tuple[Path, Path]:
    """A fresh copy of :func:`tiny_dataset_source` (dataset, annotations/raw) for one test,
    which may change or break its files."""
    shutil.copytree(tiny_dataset_source / "ds", tmp_path / "ds")
    shutil.copytree(tiny_dataset_source / "annotations", tmp_path / "annotations")
    return tmp_path / "ds", tmp_path / "annotations" / "raw"


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
    from emocore.runs.registry import Registry
    from emocore.training.train import TrainConfig
    from emocore.workflows.demo import demo_paths
    from emocore.workflows.study import StudyConfig, run_study

    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    config = StudyConfig(
        n_folds=2,
        n_permutations=50,
        saliency_volumes=4,  # checked maps double their steps: keep the shared fixture quick
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    run_study(cache, Registry(paths["registry"]), config)
    return root


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`build_tiny_home`, built once per test session (about 20 s on 2 cores) for the
    AppTest and browser tests; a test that changes it works on a copy."""
    return build_tiny_home(tmp_path_factory.mktemp("emocore-home"))


FINDINGS_SUBJECTS = ("01", "02", "03", "04", "05", "06", "07", "08")
FINDINGS_DESIGNS = {"single-subject": "leave-one-run-out", "loso": "leave-one-subject-out"}


def findings_predictions(
    design: str, *, seed: int, planted: str | None = "05", n_runs: int = 4, n_volumes: int = 60
):
    """Held-out predictions of eight people (emotion episodes of 6 volumes, 70 % right), written
    by emocore's own prediction_table; ``planted``'s LOVE volumes are mostly called SADNESS."""
    import pandas as pd

    from emocore.constants import EMOTIONS
    from emocore.training.designs import prediction_table

    rng = np.random.default_rng(seed)
    classes = list(EMOTIONS)
    tables = []
    for s, subject in enumerate(FINDINGS_SUBJECTS):
        for run in range(1, n_runs + 1):
            y = np.array([(v // 6) % len(classes) for v in range(n_volumes)])
            pred = np.where(
                rng.random(n_volumes) < 0.7, y, rng.integers(0, len(classes), n_volumes)
            )
            if subject == planted:
                love = (y == classes.index("LOVE")) & (rng.random(n_volumes) < 0.8)
                pred[love] = classes.index("SADNESS")
            probs = np.full((n_volumes, len(classes)), 0.1 / (len(classes) - 1))
            probs[np.arange(n_volumes), pred] = 0.9
            meta = pd.DataFrame(
                {
                    "subject": subject,
                    "run": run,
                    "volume": np.arange(n_volumes),
                    "movie_time": 900.0 * (run - 1) + 2.0 * np.arange(n_volumes),
                    "label_time": 900.0 * (run - 1) + 2.0 * np.arange(n_volumes) - 4.0,
                    "scene": 10 * run + np.arange(n_volumes) // 20,
                    "scene_location": [f"PLACE {v // 20}" for v in range(n_volumes)],
                    "agreement": 1.0,
                    "y": y,
                }
            )
            loso = design == "loso"
            tables.append(
                prediction_table(
                    meta,
                    probs,
                    classes,
                    fold=s if loso else run - 1,
                    fold_name=f"sub-{subject}" if loso else f"run-{run}",
                    seen=not loso,
                    model="loso" if loso else f"sub-{subject}",
                    design=design,
                    split=FINDINGS_DESIGNS[design],
                )
            )
    return pd.concat(tables, ignore_index=True)


def write_findings_run(registry, *, cache_key: str = "synthetic-findings") -> str:
    """A finished study of eight people in two designs whose bundle holds single-case findings.

    No training: synthetic held-out predictions (sub-05 takes LOVE for SADNESS) go through the
    real evaluation (:func:`emocore.stats.evaluate.evaluate_predictions`) and the real study.json
    entries (``atypical_entries``, ``stability_entries``); returns the run id.
    """
    import json

    import pandas as pd

    from emocore import __version__
    from emocore.constants import EMOTIONS
    from emocore.runs.schema import STUDY_SCHEMA_VERSION
    from emocore.stats.evaluate import evaluate_predictions
    from emocore.workflows.study import (
        StudyConfig,
        atypical_entries,
        headline_row,
        stability_entries,
        study_verdicts,
    )

    config = StudyConfig(designs=tuple(FINDINGS_DESIGNS), n_folds=4, n_permutations=50)
    primary = config.primary_analysis()  # loso:cnn, the default
    run = registry.create_run(
        kind="study",
        split=config.split,
        subjects=FINDINGS_SUBJECTS,
        config=config.to_dict(),
        data_hash=cache_key,
    )
    folder = registry.run_dir(run.id)
    metrics, results, cnn, linear = {}, [], [], []
    tables = {}
    for i, (design, split) in enumerate(FINDINGS_DESIGNS.items()):
        metrics[design] = {"plans": {}}
        for family, planted, out in (("cnn", "05", cnn), ("linear", None, linear)):
            table = findings_predictions(
                design, seed=10 * i + (family == "linear"), planted=planted
            )
            out.append(table)
            tables[(design, family)] = table
            ev = evaluate_predictions(
                table,
                classes=list(EMOTIONS),
                split=split,
                design=design,
                leaky=False,
                n_permutations=50,
                model=family,
                procedure="verdict" if config.is_primary(design, family) else "holm",
            )
            metrics[design][family] = ev
            results.append({"model": family, **headline_row(design, ev)})
    pd.concat(cnn).to_csv(folder / "predictions.tsv", sep="\t", index=False)
    pd.concat(linear).to_csv(folder / "baseline.tsv", sep="\t", index=False)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    study = {
        "schema_version": STUDY_SCHEMA_VERSION,
        "run_id": run.id,
        "emocore_version": __version__,
        "cache": {
            "path": "cache",
            "key": cache_key,
            "grid": list(SHAPE),
            "options": {"lag_s": 4.0, "recipe": "poster"},
        },
        "config": config.to_dict(),
        "classes": list(EMOTIONS),
        "subjects": list(FINDINGS_SUBJECTS),
        "results": results,
        "alpha": config.alpha,
        "primary": primary.to_dict(),
        "verdicts": study_verdicts(tables, metrics, list(EMOTIONS), primary, alpha=config.alpha),
        "atypical": atypical_entries(metrics),
        "stability": stability_entries(metrics),
        "seconds": 0.0,
        "saliency": {},
        "embeddings": None,
        "train_volumes_per_s": {},
        "peak_gpu_memory_gib": {},
    }
    (folder / "study.json").write_text(json.dumps(study))
    registry.update(run.id, status="running")
    registry.set_status(run.id, "completed")
    return run.id


def strip_findings(registry, run_id: str) -> None:
    """Make a run look like one made before single-case findings existed."""
    import json

    folder = registry.run_dir(run_id)
    study = json.loads((folder / "study.json").read_text())
    for key in ("schema_version", "alpha", "atypical", "stability", "primary", "verdicts"):
        study.pop(key, None)
    (folder / "study.json").write_text(json.dumps(study))
    metrics = json.loads((folder / "metrics.json").read_text())
    for families in metrics.values():
        for family, ev in families.items():
            if family != "plans":
                for key in ("alpha", "findings", "stability"):
                    ev.pop(key, None)
    (folder / "metrics.json").write_text(json.dumps(metrics))
