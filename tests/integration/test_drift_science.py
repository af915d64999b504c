"""What drift removal does to within-person accuracy and to the random-split leak.

The measurement behind README.md's "Drift and confounds" table (``python -m pytest -m sweep
tests/integration/test_drift_science.py -s``, about 10 minutes on 2 cores; not in CI). Each
cohort is prepared twice, with the default cleaning (linear trend and 0.008-Hz cosine high-pass)
and with the mean removed only, and the single-subject CNN is scored with the honest run-wise
split and with the poster's random split over volumes, each beside its permutation chance.
"""

from __future__ import annotations

import pytest

from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.stats.evaluate import evaluate_predictions
from emocore.training.designs import run_design
from emocore.training.train import TrainConfig

TRAIN = TrainConfig(epochs=3, class_weights=True, seed=0)
CLEANINGS = {
    "mean only": PrepareOptions(detrend=False, high_pass=None),
    "detrend + 0.008 Hz": PrepareOptions(),
}


def _score(cache, split: str) -> dict:
    res = run_design(cache, "single-subject", TRAIN, split=split, n_folds=4, refit=False)
    s = evaluate_predictions(
        res.predictions,
        classes=res.classes,
        split=res.split,
        design="single-subject",
        leaky=res.leaky,
        n_permutations=200,
    )["summary"]
    return {
        "bacc": s["balanced_accuracy"],
        "chance": s["chance"]["balanced_accuracy_permutation"],
        "p": s["p_value"]["balanced_accuracy"],
    }


def measure(tmp_path, *, signal: float, drift: float, n_subjects: int = 4) -> list[dict]:
    root = tmp_path / f"s{signal}-d{drift}"
    cohort = generate_cohort(
        root / "cohort",
        SynthConfig(n_subjects=n_subjects, signal=signal, drift=drift, amplitude=3.5),
    )
    rows = []
    for name, options in CLEANINGS.items():
        cache = prepare_cache(
            cohort, cohort / "annotations" / "raw", root / name.replace(" ", ""), options=options
        )
        for split in ("leave-one-run-out", "random"):
            rows.append(
                {"signal": signal, "drift": drift, "cleaning": name, "split": split}
                | _score(cache, split)
            )
    return rows


def _table(rows: list[dict]) -> str:
    lines = [
        "| cohort | drift | cleaning | split | balanced accuracy | permutation chance | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cohort = "emotion signal" if r["signal"] else "no signal"
        lines.append(
            f"| {cohort} | x{r['drift']:g} | {r['cleaning']} | {r['split']} | "
            f"{100 * r['bacc']:.1f} % | {100 * r['chance']:.1f} % | {r['p']:.3f} |"
        )
    return "\n".join(lines)


@pytest.mark.sweep
def test_drift_removal_table(tmp_path):
    rows = []
    for signal in (1.0, 0.0):
        for drift in (1.0, 10.0):
            rows += measure(tmp_path, signal=signal, drift=drift)
    print("\n" + _table(rows))
    by = {(r["signal"], r["drift"], r["cleaning"], r["split"]): r for r in rows}
    for drift in (1.0, 10.0):
        # With no emotion signal, the honest split stays near chance whatever the cleaning.
        for cleaning in CLEANINGS:
            r = by[(0.0, drift, cleaning, "leave-one-run-out")]
            assert abs(r["bacc"] - r["chance"]) < 0.05, r
