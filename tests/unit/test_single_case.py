"""Single-case statistics: the reference test, the corrections, and calibration by simulation."""

import numpy as np
import pandas as pd
import pytest

from emocore.errors import ConfigError
from emocore.stats.single_case import (
    ALPHA,
    FINDING_KEYS,
    anscombe_arcsine,
    atypical_findings,
    crawford_howell,
    design_effect,
    finding_sentence,
    fold_stability,
    holm,
    single_case_tests,
)

CLASSES = ["HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER"]
K = len(CLASSES)


# ---------------------------------------------------------------------------------------------
# Simulated cohorts: a prediction table per cohort
# ---------------------------------------------------------------------------------------------


def _mean_confusion(rng, recall):
    p0 = np.zeros((K, K))
    for e in range(K):
        others = [j for j in range(K) if j != e]
        p0[e, others] = (1 - recall[e]) * rng.dirichlet(np.full(K - 1, 0.7))
        p0[e, e] = recall[e]
    return p0


def _table(rng, matrices, n_e, block, sticky=0.0):
    """Prediction table of people whose volumes of class e are predicted from matrices[s][e],
    in runs of ``block`` identical predictions (as scenes make real predictions alike), or, with
    ``sticky``, as a Markov chain that repeats the last prediction with that probability."""
    rows = []
    for s, p in enumerate(matrices):
        volume = 0
        for e in range(K):
            draws = rng.choice(K, size=int(np.ceil(n_e[e] / block)), p=p[e] / p[e].sum())
            draws = np.repeat(draws, block)[: n_e[e]]
            repeat = rng.random(len(draws)) < sticky
            for i in range(1, len(draws)):
                if repeat[i]:
                    draws[i] = draws[i - 1]
            for pred in draws:
                rows.append((f"{s + 1:02d}", 1, volume, CLASSES[e], CLASSES[pred]))
                volume += 1
            volume += 2  # a gap between segments
    return pd.DataFrame(rows, columns=["subject", "run", "volume", "true", "pred"])


def _null_cohort(rng):
    """People drawn from one population: rates near 0 and 1, between-person spread, runs."""
    n_sub = int(rng.choice([6, 8, 10]))
    n_e = rng.integers(8, 30, K) if rng.random() < 0.5 else rng.integers(40, 150, K)
    p0 = _mean_confusion(rng, rng.choice([0.02, 0.1, 0.3, 0.6, 0.9, 0.98], K))
    conc = rng.choice([0.0, 30.0, 300.0])  # 0: no between-person spread
    matrices = [
        p0 if conc == 0 else np.stack([rng.dirichlet(p0[e] * conc + 1e-3) for e in range(K)])
        for _ in range(n_sub)
    ]
    if rng.random() < 0.5:
        return _table(rng, matrices, n_e, int(rng.choice([1, 3, 6])))
    return _table(rng, matrices, n_e, 1, sticky=float(rng.choice([0.3, 0.6, 0.85])))


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def test_crawford_howell_is_exact_for_normal_controls(rng):
    """Its defining property: a case from the controls' normal population is flagged at rate
    alpha, with 5 controls (where a z-score would flag far more)."""
    n_sim = 20000
    controls = rng.normal(size=(n_sim, 5))
    case = rng.normal(size=n_sim)
    p = np.array([crawford_howell(x, c)[2] for x, c in zip(case, controls, strict=True)])
    assert abs((p < 0.05).mean() - 0.05) < 0.006
    t, df, p_one = crawford_howell(6.0, [10, 12, 14, 16, 18])
    assert df == 4
    assert t == pytest.approx(-8 / (np.std([10, 12, 14, 16, 18], ddof=1) * np.sqrt(6 / 5)))
    assert crawford_howell(22.0, [10, 12, 14, 16, 18], alternative="greater")[2] == pytest.approx(
        p_one
    )


def test_crawford_howell_refuses_what_it_cannot_test():
    with pytest.raises(ConfigError, match="at least 2 controls"):
        crawford_howell(1.0, [0.5])
    with pytest.raises(ConfigError, match="no spread"):
        crawford_howell(1.0, [0.5, 0.5, 0.5])
    with pytest.raises(ConfigError, match="'alternative' must be one of"):
        crawford_howell(1.0, [0.5, 0.7], alternative="lower")


def test_holm_matches_a_hand_computation_and_keeps_nan():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert np.isnan(holm([np.nan])).all()


def test_arcsine_stabilises_the_binomial_variance(rng):
    for p in (0.02, 0.5, 0.95):
        k = rng.binomial(100, p, size=50000)
        assert np.var(anscombe_arcsine(k, 100)) == pytest.approx(1 / 402, rel=0.2)
    assert np.isnan(anscombe_arcsine(0, 0))


def test_design_effect_grows_with_runs_of_alike_predictions(rng):
    p = _mean_confusion(rng, np.full(K, 0.5))
    independent = design_effect(_table(rng, [p] * 6, [80] * K, 1), CLASSES)
    runs = design_effect(_table(rng, [p] * 6, [80] * K, 6), CLASSES)
    assert np.all(independent < 1.4)
    assert np.all(runs > 3)
    no_order = _table(rng, [p] * 3, [10] * K, 1).drop(columns=["run", "volume"])
    assert np.all(design_effect(no_order, CLASSES) == 1)


# ---------------------------------------------------------------------------------------------
# Calibration: the acceptance test of the statistic
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_null_people_are_flagged_at_most_at_alpha(rng):
    """Thousands of null people (rates near 0 and 1, spread between people, runs of alike
    predictions, 5 to 9 others): the share flagged on any of their 26 measures is <= alpha, and
    each measure's one-sided p-values are not liberal."""
    flagged_people = people = 0
    small_p = {"balanced_accuracy": [], "recall": [], "confusion": []}
    for _ in range(120):
        out = atypical_findings(_null_cohort(rng), CLASSES, design="single-subject")
        by_person = out.groupby("subject")["flagged"].any()
        flagged_people += int(by_person.sum())
        people += len(by_person)
        tested = out[out["p"].notna()]
        kind = tested["measure"].where(
            tested["measure"].isin(["balanced_accuracy", "recall"]), "confusion"
        )
        for name, part in tested.groupby(kind):
            small_p[name].extend((part["p"] < 0.05).tolist())
    assert people > 800
    assert flagged_people / people <= ALPHA
    for name, hits in small_p.items():
        assert len(hits) > 500, name
        assert np.mean(hits) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / len(hits)), name


@pytest.mark.slow
def test_a_planted_confusion_is_found(rng):
    """Others take LOVE for SADNESS in about 8 % of volumes, one person in 55 % of them: with 9
    others that person is flagged in most cohorts (77 % when this was written: the price of
    Holm over 26 tests and a conservative floor), and few others are."""
    hits = false_flags = 0
    for _ in range(30):
        p0 = _mean_confusion(rng, np.array([0.6, 0.7, 0.6, 0.4, 0.5]))
        p0[3] = [0.2, 0.1, 0.08, 0.4, 0.22]
        people = [np.stack([rng.dirichlet(p0[e] * 100) for e in range(K)]) for _ in range(10)]
        people[-1][3] = [0.1, 0.05, 0.55, 0.22, 0.08]
        out = atypical_findings(_table(rng, people, [100] * K, 2), CLASSES, design="x")
        row = out[(out["subject"] == "10") & (out["measure"] == "LOVE->SADNESS")].iloc[0]
        hits += bool(row["flagged"])
        false_flags += int(out[out["subject"] != "10"].groupby("subject")["flagged"].any().sum())
    assert hits >= 20
    assert false_flags <= ALPHA * 30 * 9


def test_weaker_overall_is_one_finding(rng):
    """A person decoded worse on every emotion, errors spread as in the others: balanced
    accuracy (ALL) is flagged, no recall or confusion of a single emotion."""
    typical = np.full((K, K), 0.075) + np.eye(K) * (0.7 - 0.075)
    weak = np.full((K, K), 0.175) + np.eye(K) * (0.3 - 0.175)
    counts = np.stack([np.round(typical * 200) + rng.integers(-6, 7, (K, K)) for _ in range(9)])
    counts = np.clip(np.concatenate([counts, np.round(weak * 200)[None]]), 0, None)
    out = single_case_tests(counts, CLASSES, [f"{i:02d}" for i in range(1, 11)])
    mine = out[out["subject"] == "10"]
    assert mine.loc[mine["measure"] == "balanced_accuracy", "flagged"].item()
    assert mine["flagged"].sum() == 1


def test_too_few_others_flags_nothing_and_says_why():
    counts = np.stack([np.eye(K) * 50 + 5 for _ in range(4)])
    counts[-1, 3] = [5, 5, 45, 0, 5]
    out = single_case_tests(counts, CLASSES, ["01", "02", "03", "04"])
    assert not out["flagged"].any()
    assert out["too_few_others"].all()
    sentence = finding_sentence(out.iloc[-1].to_dict())
    assert "needs at least 5 other people" in sentence


def test_findings_carry_the_agreed_keys_and_a_plain_sentence(rng):
    p0 = _mean_confusion(rng, np.full(K, 0.6))
    people = [p0] * 7 + [p0.copy()]
    people[-1][3] = [0.05, 0.05, 0.6, 0.25, 0.05]
    out = atypical_findings(_table(rng, people, [100] * K, 1), CLASSES, design="loso")
    assert set(FINDING_KEYS) <= set(out.columns)
    assert len(out) == 8 * (1 + K + K * (K - 1))
    row = out[(out["subject"] == "08") & (out["measure"] == "LOVE->SADNESS")].iloc[0]
    assert row["emotion"] == "LOVE" and row["flagged"] and row["df"] == 6
    assert row["sentence"].startswith("6") and "of sub-08's LOVE volumes were decoded as SADNESS"
    assert "in the 7 others" in row["sentence"] and row["sentence"].endswith("atypical at α = 0.05")
    # the statistics are in the details line: both criteria, the effect size and the correction
    assert "own rate against the others'" in row["details"] and "difference test" in row["details"]
    assert "Z_CC = " in row["details"] and "95 % CI" in row["details"]
    assert "Holm-adjusted" in row["details"]
    lo, hi = row["z_cc_ci95"]
    assert lo < row["z_cc"] < hi
    assert row["p"] == pytest.approx(max(row["p_raw"], row["p_relative"]))
    ba = out[(out["subject"] == "01") & (out["emotion"] == "ALL")].iloc[0]
    assert ba["measure"] == "balanced_accuracy" and ba["js_distance"] is None


def test_fold_stability_reports_the_spread_across_folds():
    rows = []
    for fold, correct in ((0, 9), (1, 5)):
        for i in range(10):
            rows.append(("01", fold, "LOVE", "LOVE" if i < correct else "FEAR"))
            rows.append(("01", fold, "FEAR", "FEAR"))
    table = pd.DataFrame(rows, columns=["subject", "fold", "true", "pred"])
    out = fold_stability(table, ["LOVE", "FEAR"]).iloc[0]
    assert out["n_folds"] == 2
    assert out["fold_balanced_accuracy_mean"] == pytest.approx((0.95 + 0.75) / 2)
    assert out["fold_balanced_accuracy_sd"] == pytest.approx(np.std([0.95, 0.75], ddof=1))


def test_js_distance_describes_where_the_errors_go():
    """Hand-computed: a person whose LOVE volumes all go to ANGER against others' all-LOVE."""
    rows = [
        (s, 1, i, "LOVE", "ANGER" if s == "02" else "LOVE")
        for s in ("01", "02", "03")
        for i in range(2)
    ]
    table = pd.DataFrame(rows, columns=["subject", "run", "volume", "true", "pred"])
    out = atypical_findings(table, CLASSES, design="x").set_index(["subject", "measure"])
    recall = out.xs("recall", level="measure")
    love = recall[recall["emotion"] == "LOVE"]["js_distance"]
    assert love.loc["02"] == pytest.approx(1.0)  # disjoint answers
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    m = (p + q) / 2
    kl = lambda a, b: sum(x * np.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)  # noqa: E731
    assert love.loc["01"] == pytest.approx(np.sqrt((kl(p, m) + kl(q, m)) / 2))
    assert recall[recall["emotion"] == "ANGER"]["js_distance"].isna().all()  # no ANGER volumes


def test_one_person_alone_is_not_tested():
    """A LOSO fold job holds one person's predictions: nothing to compare with, no error."""
    counts = (np.eye(K) * 40 + 2)[None]
    out = single_case_tests(counts, CLASSES, ["03"])
    assert len(out) == 26 and not out["flagged"].any()
    assert out["p"].isna().all() and out["others_min"].isna().all()
