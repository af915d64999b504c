"""What nested-CV tuning changes: the CNN's epochs and the linear baseline's C, fixed vs tuned.

The measurement behind README.md's "Fixed vs tuned settings" table (``OMP_NUM_THREADS=1 python -m
pytest -m sweep tests/integration/test_tuning_science.py -s``, 18 minutes on 2 shared cores; not
in CI). Two cohorts from the demo's generator
(:func:`emocore.workflows.demo.demo_synth_config`, seed 0): the demo cohort itself (4 % signal at the
patterns' peaks) and the same cohort with 3.5 %. Each is generated like the demo (11 people) and
cached with the default cleaning for ``PEOPLE`` (six of the demo's ten cohort people, to fit about
25 minutes on 2 shared cores with ``OMP_NUM_THREADS=1``), then run with the demo study's designs,
split and seed (single-subject and cross-subject, run-wise 2-fold, no final refit): once with
the fixed settings (the demo's 2 epochs, C = 0.01) and once tuned on inner folds of each outer
fold's training rows (epochs by early stopping on one inner run fold, at most ``MAX_EPOCHS``;
C from :data:`emocore.training.baseline.C_GRID` on three inner run folds). Fixed and tuned use the same outer
folds; every balanced accuracy is printed beside its permutation chance and p-value, with what
the folds chose.

Only what must hold is asserted (identical outer folds and test rows, finite numbers), never
which setting wins.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest

from emocore.data.dataset import select
from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import generate_cohort
from emocore.stats.evaluate import evaluate_predictions
from emocore.training.baseline import C_GRID, FIXED_C, fit_linear
from emocore.training.designs import run_design
from emocore.workflows.demo import DEMO_COHORT, demo_study_config, demo_synth_config

#: the most epochs an outer fold may choose (the demo trains 2)
MAX_EPOCHS = 6
N_PERMUTATIONS = 200
#: the first six of the demo's ten cohort people: all ten do not fit ~25 minutes on 2 shared cores
PEOPLE = DEMO_COHORT[:6]
COHORTS = {"demo (4 %)": 4.0, "3.5 %": 3.5}  # amplitude: % signal at the patterns' peaks
KEY = ["model", "fold_name", "subject", "run", "volume"]


def _score(pred, *, res_split: str, leaky: bool, design: str, classes, model: str) -> dict:
    s = evaluate_predictions(
        pred,
        classes=classes,
        split=res_split,
        design=design,
        leaky=leaky,
        n_permutations=N_PERMUTATIONS,
        seed=0,
        model=model,
    )["summary"]
    return {
        "bacc": s["balanced_accuracy"],
        "chance": s["chance"]["balanced_accuracy_permutation"],
        "p": s["p_value"]["balanced_accuracy"],
    }


def _chosen(values: list[float], kind: str) -> str:
    med = float(np.median(values))
    if kind == "epochs":
        edge = sum(v == MAX_EPOCHS for v in values)
        text = f"epochs median {med:g} (range {min(values):g}-{max(values):g})"
        return text + (f", {edge}/{len(values)} at the maximum {MAX_EPOCHS}" if edge else "")
    lo, hi = min(C_GRID), max(C_GRID)
    edge_lo = sum(v == lo for v in values)
    edge_hi = sum(v == hi for v in values)
    text = f"C median {med:g} (range {min(values):g}-{max(values):g})"
    if edge_lo:
        text += f", {edge_lo}/{len(values)} at the grid's smallest {lo:g}"
    if edge_hi:
        text += f", {edge_hi}/{len(values)} at the grid's largest {hi:g}"
    return text


def measure(
    tmp_path,
    *,
    amplitude: float,
    subjects=PEOPLE,
    max_epochs: int = MAX_EPOCHS,
    designs: tuple[str, ...] | None = None,
) -> tuple[list[dict], dict]:
    """Rows of the table for one cohort, and each setting's held-out prediction tables."""
    root = tmp_path / f"a{amplitude:g}"
    synth = demo_synth_config(0).replace(amplitude=amplitude)
    cohort = generate_cohort(root / "cohort", synth)
    cache = prepare_cache(
        cohort,
        cohort / "annotations" / "raw",
        root / "cache",
        options=PrepareOptions(),
        subjects=list(subjects),
    )
    study = demo_study_config()
    classes = study.classes
    settings = {
        "fixed": (study.train, FIXED_C),
        "tuned": (replace(study.train, epoch_selection="inner", epochs=max_epochs), "auto"),
    }
    meta = select(cache, subjects=list(subjects), classes=classes)
    rows, tables = [], {}
    t0 = time.perf_counter()
    for design in designs or study.designs:
        for setting, (train, C) in settings.items():
            res = run_design(
                cache,
                design,
                train,
                subjects=list(subjects),
                split=study.split,
                n_folds=study.n_folds,
                classes=classes,
                refit=False,
            )
            lin = fit_linear(
                cache,
                meta,
                design,
                classes=classes,
                split=study.split,
                n_folds=study.n_folds,
                seed=study.train.seed,
                C=C,
            )
            print(
                f"amplitude {amplitude:g} {design} {setting}: {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            epochs = [float(c["epochs"]) for per in res.tuning.values() for c in per.values()]
            cs = [float(c["C"]) for per in lin.tuning.values() for c in per.values()]
            common = {"design": design, "setting": setting}
            for family, pred, chose in (
                ("cnn", res.predictions, _chosen(epochs, "epochs")),
                ("linear", lin.predictions, _chosen(cs, "C")),
            ):
                tables[(design, family, setting)] = pred
                score = _score(
                    pred,
                    res_split=res.split,
                    leaky=res.leaky,
                    design=design,
                    classes=classes,
                    model=family,
                )
                rows.append(
                    common
                    | {"family": family, "chose": chose, "n_folds_fitted": len(epochs)}
                    | score
                )
    return rows, tables


def _table(rows: list[dict]) -> str:
    lines = [
        "| cohort | design | family | setting | balanced accuracy | permutation chance | p "
        "| what the outer folds used |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cohort']} | {r['design']} | {r['family']} | {r['setting']} | "
            f"{r['bacc']:.3f} | {r['chance']:.3f} | {r['p']:.3f} | {r['chose']} |"
        )
    return "\n".join(lines)


def check_same_folds(tables: dict) -> None:
    """Fixed and tuned (and CNN and linear) predicted the same test rows in the same folds."""
    designs = {d for d, _, _ in tables}
    for design in designs:
        keys = [
            tables[k][KEY].astype(str).sort_values(KEY).reset_index(drop=True)
            for k in sorted(tables)
            if k[0] == design
        ]
        assert len(keys) == 4, sorted(tables)
        for other in keys[1:]:
            assert other.equals(keys[0]), design


@pytest.mark.sweep
def test_tuning_table(tmp_path):
    rows = []
    t0 = time.perf_counter()
    for cohort, amplitude in COHORTS.items():
        measured, tables = measure(tmp_path, amplitude=amplitude)
        check_same_folds(tables)
        rows += [{"cohort": cohort} | r for r in measured]
        print(f"\n{cohort}: done after {time.perf_counter() - t0:.0f} s", flush=True)
    print(
        f"\nmax epochs {MAX_EPOCHS}, C grid {[float(c) for c in C_GRID]}, "
        f"{N_PERMUTATIONS} permutations, people {list(PEOPLE)}"
    )
    print("\n" + _table(rows))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("bacc", "chance", "p")), r
        assert 0.0 <= r["p"] <= 1.0, r
