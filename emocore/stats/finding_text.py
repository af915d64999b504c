"""A single-case finding in words: what the person's rate was against the others'
(:func:`finding_what`), one sentence with whether it is flagged (:func:`finding_sentence`), and
the statistics behind it for a details line (:func:`finding_details`).
"""

from __future__ import annotations

import math
from typing import Any, cast

from emocore.stats.cohort_tests import ALPHA, MIN_OTHERS, TEST_NAME

__all__ = ["finding_details", "finding_sentence", "finding_what"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _against(row: dict[str, Any]) -> str:
    n_o = row["n_others"]
    span = (
        f"{_pct(row['others_min'])}-{_pct(row['others_max'])}".replace(" %-", "-")
        if row.get("others_min") is not None
        else "n/a"
    )
    return f"against {span} in the {n_o} other{'s' if n_o != 1 else ''}"


def finding_what(row: dict[str, Any]) -> str:
    """The finding's numbers in plain words, e.g. "82 % of sub-10's LOVE volumes were decoded
    as SADNESS, against 4-26 % in the 9 others"."""
    who = f"sub-{row['subject']}"
    measure = row["measure"]
    if measure == "balanced_accuracy":
        return (
            f"{who}'s emotions were decoded correctly {_pct(row['value'])} of the time on "
            f"average, {_against(row)}"
        )
    if measure == "recall":
        return (
            f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded correctly, "
            f"{_against(row)}"
        )
    return (
        f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded as "
        f"{row['predicted_as']}, {_against(row)}"
    )


def finding_sentence(row: dict[str, Any], *, alpha: float = ALPHA) -> str:
    """One plain sentence: what the person's rate was, the others', and whether it is flagged.

    E.g. "82 % of sub-10's LOVE volumes were decoded as SADNESS, against 4-26 % in the 9 others:
    atypical at α = 0.05". The statistics are in :func:`finding_details`.
    """
    what = finding_what(row)
    if row.get("p") is None:
        if row.get("too_few_others"):
            return (
                f"{what}: not tested (needs at least {MIN_OTHERS} other people; too little power)"
            )
        return f"{what}: not tested"
    if row["flagged"]:
        return f"{what}: atypical at α = {alpha:g}"
    return f"{what}: not flagged at α = {alpha:g} (no evidence it is atypical)"


def _present(value: Any) -> bool:
    """Whether a table value is there: not None and not NaN (pandas turns None into NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _p_is(p: Any) -> str:
    text = _p(p if _present(p) else None)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _t(name: Any, t: Any, df: Any, p: Any) -> str:
    """E.g. "t(8) = 5.10, p < 0.001 [Crawford-Howell t]"."""
    label = f" [{name}]" if _present(name) else ""
    return f"t({int(df)}) = {float(t):.2f}, {_p_is(p)}{label}"


def finding_details(row: dict[str, Any]) -> str:
    """The statistics behind a finding, for a details line: both criteria's t and p, the
    effect size Z_CC with its interval, and the corrected p with its procedure."""
    if not _present(row.get("p")) or not _present(row.get("statistic")):
        return "not tested"
    p_raw = row.get("p_raw") if _present(row.get("p_raw")) else row["p"]
    parts = [
        f"own rate against the others' ({TEST_NAME}): "
        + _t(row.get("statistic_name"), row["statistic"], row["df"], p_raw)
    ]
    if _present(row.get("statistic_relative")):
        against = (
            "the person's other emotions"
            if row["measure"] == "recall"
            else f"how often the person's other emotions were decoded as {row['predicted_as']}"
        )
        parts.append(
            f"relative to {against} (difference test): "
            + _t(
                row.get("statistic_relative_name"),
                row["statistic_relative"],
                row["df"],
                row.get("p_relative"),
            )
        )
    z, ci = row.get("z_cc"), row.get("z_cc_ci95")
    if _present(z):
        interval = (
            f" (95 % CI {ci[0]:.2f} to {ci[1]:.2f})"
            if isinstance(ci, (list, tuple)) and len(ci) == 2
            else ""
        )
        parts.append(f"effect size Z_CC = {float(cast(float, z)):.2f}{interval}")
    step = row.get("step")
    how = (
        "in the verdict's fixed order"
        + (f", step {int(cast(int, step))}" if _present(step) else "")
        if row.get("procedure") == "verdict"
        else "Holm-adjusted over the person's tests in this design"
    )
    parts.append(f"adjusted {_p_is(row.get('p_adjusted'))} ({how})")
    return "; ".join(parts)
