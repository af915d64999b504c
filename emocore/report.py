"""The per-subject HTML report of one person in one finished run.

:func:`subject_report_html` builds one self-contained page (plotly.js embedded once, so it opens
offline): the model version and config, data provenance, and for every design this person was
evaluated in: it opens with the person's single-case findings (is this person's decoding unusual
against the other people's? see :mod:`emocore.single_case`), then per design accuracy next to the
cohort with the split and chance level beside every number, what each emotion was mistaken for,
the person's findings table and fold stability, the misclassified scenes and the movie timeline. :func:`write_subject_report` stores it as ``<run>/reports/sub-XX.html`` and records it
in the registry. No streamlit here.
"""

from __future__ import annotations

import html
import logging
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from emocore import __version__
from emocore._io import atomic_write_text
from emocore.data.cache import VolumeCache
from emocore.errors import ConfigError, RegistryError
from emocore.figures import subject_vs_cohort, timeline
from emocore.findings import (
    TEST_CAPTION,
    RunFindings,
    p_is,
    person_summary,
    person_table,
    predates_message,
    stability_sentence,
    with_assessment,
)
from emocore.registry import Registry
from emocore.results import RunResults, read_table
from emocore.summaries import (
    misclassification_summary,
    misclassified_scenes,
    per_subject_metrics,
    scenes_table,
)
from emocore.summaries import percent as _pct

__all__ = [
    "RESEARCH_NOTICE",
    "chromium_path",
    "render_pdf",
    "settings_rows",
    "subject_report_html",
    "write_subject_report",
]

logger = logging.getLogger(__name__)

RESEARCH_NOTICE = (
    "Research use only: emocore is not a medical device and must not be used for diagnosis or "
    "treatment decisions. Accuracies are estimates on held-out data of a small cohort; read each "
    "next to its split and chance level."
)


# -- HTML pieces -----------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.notice{background:#fff3cd;border:1px solid #e0c060;padding:.8em 1em;border-radius:6px}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:.9em;text-align:left}th{background:#f3f3f3}.muted{color:#666;font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
table.settings th{font-weight:normal;color:#444;white-space:nowrap}
@page{size:A4;margin:18mm 15mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10.5pt}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
table,figure,.plotly-graph-div,.js-plotly-plot,.notice,.keep{break-inside:avoid;
page-break-inside:avoid}h1,h2,h3,summary{break-after:avoid;page-break-after:avoid}
tr{break-inside:avoid}td,th{font-size:8.5pt;padding:2px 6px}
.modebar-container{display:none!important}
details{display:block}details>summary{list-style:none;font-weight:bold}
a{color:inherit;text-decoration:none}}
"""


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class='muted'>none</p>"
    out = frame.to_html(index=False, escape=True, border=0, na_rep="n/a")
    # "100.0 %" in a narrow printed column broke at its space, leaving "%" alone on a line
    return out.replace(" %</td>", "&nbsp;%</td>")


class _Figures:
    """Embeds plotly.js with the first figure only, so the file stays offline-safe and smaller."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig: Any) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=self.first)
        self.first = False
        return out


def _cache_info(study: dict[str, Any], cache: VolumeCache | str | Path | None) -> dict[str, Any]:
    info = dict(study.get("cache", {}))
    if cache is not None:
        vc = cache if isinstance(cache, VolumeCache) else VolumeCache(cache)
        info.update(
            key=vc.key,
            source=vc.manifest.get("source", {}),
            options=vc.manifest.get("options", {}),
            made=vc.manifest.get("created_at"),
        )
        # recognises(): a cache that only had people added since keeps the run's data as it was
        if not vc.recognises(study.get("cache", {}).get("key")):
            info["warning"] = (
                f"the cache now at {vc.path} (key {vc.key}) is not the one this run was trained "
                f"on (key {study.get('cache', {}).get('key')})"
            )
    return info


def _setting_value(value: Any) -> str:
    """One setting as a person reads it: yes/no, lists joined, nothing as 'not set'."""
    if value is None or value == "" or value == [] or value == {}:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_value(v) for v in value)
    return str(value)


#: Recorded setting -> (what a reader calls it, what an unset value means, value words). The
#: cache's options and a study's config are written for the code; on paper "nonfinite error" or
#: "grid mm not set" reads as a fault, so the known ones are named here (unknown keys keep their
#: own names and "not set").
_SETTING_WORDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "grid_mm": ("voxel size (mm)", "the data's own", {}),
    "lag_s": ("hemodynamic lag (s)", "not set", {}),
    "recipe": ("label recipe", "not set", {}),
    "observers": ("observer set", "all observers", {}),
    "nonfinite": ("NaN/Inf voxel values", "refused", {"error": "refused", "zero": "set to 0"}),
    "task": ("BIDS task filter", "any", {}),
    "acq": ("BIDS acquisition filter", "any", {}),
    "space": ("BIDS space filter", "any", {}),
    "desc": ("BIDS desc filter", "any", {}),
    "detrend": ("linear drift removed per run", "no", {}),
    "high_pass": ("high-pass cut-off (Hz)", "none", {}),
    "confounds": ("confound regressors", "none", {}),
    "subjects": ("people", "everyone in the cache", {}),
    "folds": ("folds", "made from the split", {}),
    "n_folds": ("number of folds", "one per run or person", {}),
    "include_none": ("NONE volumes as a sixth class", "no", {}),
    "refit": ("final model on all the data", "no", {}),
    "baseline": ("linear baseline", "no", {}),
    "linear_C": ("linear baseline's C (regularisation)", "chosen by nested CV", {}),
    "saliency_volumes": ("volumes per saliency map", "not set", {}),
    "n_permutations": ("permutations (chance level)", "not set", {}),
    "alpha": ("α of the single-case tests", "not set", {}),
    "lr": ("learning rate", "not set", {}),
    "widths": ("convolution widths", "not set", {}),
    "hidden": ("hidden units", "not set", {}),
    "amp": ("bf16 autocast (GPU only)", "no", {}),
    "channels_last": ("channels-last memory layout", "no", {}),
    "compile": ("torch.compile", "no", {}),
    "prefetch": ("batches read ahead", "none", {}),
}


def settings_rows(settings: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A recorded config (nested dicts) as ``(name, value)`` rows, nested names joined by ' · '.

    The report shows these instead of raw JSON: one row per setting, readable on paper, known
    settings in words (:data:`_SETTING_WORDS`: "NaN/Inf voxel values: refused", not
    "nonfinite: error").
    """
    if not isinstance(settings, dict):
        return [(prefix or "value", _setting_value(settings))]
    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            rows.extend(settings_rows(value, f"{prefix} · {key}" if prefix else str(key)))
            continue
        label, unset, words = _SETTING_WORDS.get(str(key), (str(key), "not set", {}))
        name = f"{prefix} · {label}" if prefix else label
        text = _setting_value(value)
        if text == "not set":
            text = unset
        rows.append((name.replace("_", " "), words.get(text, text)))
    return rows


def _settings_table(settings: Any) -> str:
    rows = settings_rows(settings)
    if not rows:
        return "<p class='muted'>not recorded</p>"
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='settings'>{body}</table>"


def _provenance(record: Any, study: dict[str, Any], info: dict[str, Any]) -> str:
    rows = [
        ("emocore version (run)", study.get("emocore_version")),
        ("emocore version (report)", __version__),
        ("run id", study.get("run_id", record.id)),
        ("run created", record.created_at),
        ("cache key (data version)", info.get("key")),
        ("subjects in the study", ", ".join(f"sub-{s}" for s in study.get("subjects", []))),
    ]
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_setting_value(v))}</td></tr>"
        for k, v in rows
    )
    warn = f"<p class='notice'>{html.escape(info['warning'])}</p>" if "warning" in info else ""
    return (
        f"<h2>Model and data</h2><table>{body}</table>{warn}"
        f"<h3>Data source</h3>{_settings_table(info.get('source', {}))}"
        f"<h3>Preparation and label settings</h3>{_settings_table(info.get('options', {}))}"
        f"<details open><summary>Model and training settings</summary>"
        f"{_settings_table(study.get('config', {}))}</details>"
    )


def _design_section(
    design: str,
    table: pd.DataFrame,
    subject: str,
    classes: list[str],
    headline: dict[str, Any],
    figure: _Figures,
    found: RunFindings,
) -> str:
    split = str(table["split"].iloc[0]) if "split" in table else headline.get("split", "?")
    chance_k = 1.0 / len(classes)
    chance_perm = headline.get("chance_balanced_accuracy")
    tag = f"split: {split}; chance {_pct(chance_k)} (1/{len(classes)} classes)"
    scores = per_subject_metrics(table, classes=classes)
    me = scores[scores["subject"] == subject].iloc[0]
    others = scores[scores["subject"] != subject]
    rows = [
        {
            "emotion": c,
            f"sub-{subject}": _pct(me[f"accuracy_{c}"]),
            "cohort mean (others)": _pct(others[f"accuracy_{c}"].mean()) if len(others) else "n/a",
            "split": split,
            "chance": _pct(chance_k),
        }
        for c in classes
    ]
    sentences = "".join(
        f"<li>{html.escape(misclassification_summary(table, subject, c)['sentence'])}</li>"
        for c in classes
    )
    if found.available:
        tests = (
            f"<p>{html.escape(person_summary(found, subject, design))}</p>"
            f"{_table(person_table(found.person(subject, design)))}"
            f"<p class='muted'>{html.escape(TEST_CAPTION)}; α = {found.alpha:g}.</p>"
            f"<p>{html.escape(_stability(found, subject, design, split))}</p>"
        )
    else:
        tests = "<p class='muted'>none: this run predates single-case findings (see above)</p>"
    scenes = pd.concat(
        [scenes_table(misclassified_scenes(table, subject, c)).assign(emotion=c) for c in classes],
        ignore_index=True,
    )
    scenes = scenes[["emotion", *scenes.columns.drop("emotion")]]
    mine = table[table["subject"] == subject]
    seen = "seen" in mine and bool(mine["seen"].astype(bool).any())
    note = (
        "Held-out (cross-validated) predictions: every volume was predicted by a model that did "
        "not train on it"
        + (" (this person's other runs were in the training set)." if seen else ".")
    )
    return f"""
<div class="keep"><h2>{html.escape(design)} — {html.escape(tag)}</h2>
<p class="muted">{html.escape(note)}</p>
<p>Balanced accuracy of sub-{subject}: <b>{_pct(me["balanced_accuracy"])}</b>
 (split: {html.escape(split)}; chance {_pct(chance_k)}) — cohort, all subjects pooled:
 {_pct(headline.get("balanced_accuracy"))} (split: {html.escape(split)}; permutation chance
 {_pct(chance_perm)}, {html.escape(p_is(headline.get("p_value")))}).</p>
<h3>Per emotion (recall): sub-{subject} vs the other subjects — {html.escape(tag)}</h3>
{_table(pd.DataFrame(rows))}
{figure(subject_vs_cohort(me, scores, classes, subject=subject, chance=chance_k))}</div>
<h3>What each emotion was predicted as</h3><ul>{sentences}</ul>
<h3>Single-case tests: sub-{subject} against the other people (CNN) — {html.escape(tag)}</h3>
{tests}
<h3>Misclassified scenes</h3>
{_table(scenes)}
<h3>Movie timeline</h3>
{figure(timeline(mine, title=f"sub-{subject}, {design}: true vs predicted ({split})"))}
"""


def _stability(found: RunFindings, subject: str, design: str, split: str) -> str:
    row = found.stability_of(subject, design)
    return stability_sentence(row, subject=subject, design=design, split=split)


def _findings_section(found: RunFindings, subject: str, run_id: str) -> str:
    """The opening of the report: the person's flagged findings per design and model family,
    or that there are none and how many tests were run."""
    head = f"<h2>Findings: is sub-{subject}'s decoding unusual against the other people?</h2>"
    if not found.available:
        return (
            f"<section id='findings'>{head}<p>{html.escape(predates_message(run_id))}</p></section>"
        )
    mine = found.table[found.table["subject"] == subject]
    tested = mine[mine["p"].notna()]
    flagged = tested.loc[tested["flagged"]]
    pairs = list(mine[["design", "model"]].drop_duplicates().itertuples(index=False, name=None))
    n_designs, n_models = tested["design"].nunique(), tested["model"].nunique()
    scope = (
        f"{len(tested)} tests in {n_designs} design{'s' if n_designs != 1 else ''} × "
        f"{n_models} model famil{'ies' if n_models != 1 else 'y'}"
    )
    if tested.empty:
        total = (
            f"sub-{subject} could not be tested: a single-case test needs at least 5 other "
            "people in a design (too little power), so nothing is flagged."
        )
    elif flagged.empty:
        total = f"No atypical finding for sub-{subject} at α = {found.alpha:g} ({scope})."
    else:
        total = (
            f"{len(flagged)} atypical finding{'s' if len(flagged) != 1 else ''} for sub-{subject} "
            f"at α = {found.alpha:g} ({scope}; Holm-adjusted within each design and model family)."
        )
    parts = [head, f"<p><b>{html.escape(total)}</b></p>"]
    for design, model in pairs:
        line = person_summary(found, subject, design, model=model)
        rows = flagged[(flagged["design"] == design) & (flagged["model"] == model)]
        items = "".join(f"<li>{html.escape(sentence)}</li>" for sentence in rows["sentence"])
        parts.append(f"<p>{html.escape(line)}</p>" + (f"<ul>{items}</ul>" if items else ""))
    parts.append(f"<p class='muted'>{html.escape(TEST_CAPTION)}.</p>")
    return "<section id='findings'>" + "".join(parts) + "</section>"


def _assessed_note(assessment: dict[str, Any] | None, subject: str, run_id: str) -> str:
    if assessment is None:
        return ""
    lines = "".join(
        f"<li>{html.escape(design)}: "
        + (
            html.escape(d.get("reason", d["status"]))
            if d["status"] != "assessed"
            else "the person's own model, cross-validated with the run's configuration and folds"
            if design == "single-subject"
            else f"decoded by {len(d.get('models', []))} cohort models that never saw sub-{subject}"
        )
        + "</li>"
        for design, d in assessment.get("designs", {}).items()
    )
    return (
        f"<p><b>sub-{subject} was not in run {html.escape(run_id)}'s cohort</b>: the person was "
        "added after the study and assessed against it (assessment run "
        f"{html.escape(str(assessment.get('assess_run_id')))}); the cohort's models were not "
        f"changed.</p><ul>{lines}</ul>"
    )


def subject_report_html(
    registry: Registry | str | Path,
    run_id: str,
    subject: str,
    cache: VolumeCache | str | Path | None = None,
) -> str:
    """A self-contained HTML report of one person in one finished run."""
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    run = RunResults(reg, run_id)
    record, study = run.record, run.study
    predictions = run.predictions()
    subject = str(subject).removeprefix("sub-")
    assessment = None
    if subject not in study.get("subjects", []):
        assessment = run.assessment(subject)
        if assessment is None:
            raise ConfigError(
                f"sub-{subject} is not in run {run_id} and was not assessed against it; it has "
                f"{', '.join('sub-' + s for s in study.get('subjects', []))} (assess a new "
                f"person with `emocore assess --run {run_id} --subject XX`)"
            )
        assessed = run.assessment_dir(subject) / "predictions.tsv"
        if assessed.is_file():
            predictions = pd.concat([predictions, read_table(assessed)], ignore_index=True)
    classes = list(study["classes"])
    found = run.findings
    if assessment is not None:
        found = with_assessment(found, assessment)
    figure = _Figures()
    heads = {r["design"]: r for r in study.get("results", []) if r.get("model") == "cnn"}
    sections = [
        _design_section(design, rows, subject, classes, heads.get(design, {}), figure, found)
        for design, rows in predictions.groupby("design", sort=False)
        if (rows["subject"] == subject).any()
    ]
    if not sections:
        raise RegistryError(f"run {run_id} has no held-out predictions of sub-{subject}")
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>emocore report — sub-{subject}, run {html.escape(run_id)}</title><style>{_CSS}</style></head>
<body>
<h1>emocore report — sub-{subject}</h1>
<p class="muted">Run {html.escape(run_id)} · made {made} · emocore {__version__}</p>
<p class="notice"><b>{html.escape(RESEARCH_NOTICE)}</b></p>
{_assessed_note(assessment, subject, run_id)}{_findings_section(found, subject, run_id)}
{_provenance(record, study, _cache_info(study, cache))}
{"".join(sections)}
<p class="notice">{html.escape(RESEARCH_NOTICE)}</p>
</body></html>
"""


def write_subject_report(
    registry: Registry | str | Path,
    run_id: str,
    subject: str,
    cache: VolumeCache | str | Path | None = None,
) -> Path:
    """Write the report to ``<run>/reports/sub-XX.html`` (atomically), record it; return the path."""
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    subject = str(subject).removeprefix("sub-")
    text = subject_report_html(reg, run_id, subject, cache)
    path = atomic_write_text(reg.run_dir(run_id) / "reports" / f"sub-{subject}.html", text)
    reg.add_artifact(run_id, f"report/sub-{subject}", path, "report")
    logger.info("wrote %s", path)
    return path


# -- PDF -------------------------------------------------------------------------------------
#: Where Debian puts its chromium; else ``chromium`` (or ``chromium-browser``) on PATH.
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, offline: without the background-networking flags chromium keeps trying to reach
#: Google's hosts, which a closed network refuses.
_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=10000",  # let the report's plotly charts draw before printing
)


def chromium_path() -> Path | None:
    """The headless chromium that :func:`render_pdf` uses, or None when there is none."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def render_pdf(
    html_path: str | Path, pdf_path: str | Path | None = None, *, timeout_s: float = 120.0
) -> Path | None:
    """Print a report's HTML to PDF with headless chromium, offline (its print layout, no page
    header or footer); return the PDF's path (default: next to the HTML, ``.pdf``).

    None when no chromium is installed (``apt-get install chromium``). A chromium that fails or
    writes no PDF raises a RegistryError naming the file and what chromium said.
    """
    html_path = Path(html_path)
    if not html_path.is_file():
        raise ConfigError(f"no report at {html_path}; write it first (write_subject_report)")
    browser = chromium_path()
    if browser is None:
        logger.info("no chromium on this machine: no PDF of %s", html_path)
        return None
    target = Path(pdf_path) if pdf_path is not None else html_path.with_suffix(".pdf")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="emocore-chromium-") as profile:
        partial = Path(profile) / "report.pdf"
        command = [
            str(browser),
            *_CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={partial}",
            html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RegistryError(
                f"chromium did not print {html_path} to PDF within {timeout_s:.0f} s; download "
                "the HTML and print it from a browser instead"
            ) from exc
        if not partial.is_file() or partial.read_bytes()[:4] != b"%PDF":
            said = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
            raise RegistryError(
                f"chromium ({browser}) wrote no PDF of {html_path} (exit {done.returncode}: "
                f"{' / '.join(said) or 'no message'}); download the HTML and print it instead"
            )
        staged = target.with_name(f".{target.name}.partial")
        shutil.move(partial, staged)  # then a rename: never half a PDF under the name
        os.replace(staged, target)
    logger.info("wrote %s", target)
    return target
