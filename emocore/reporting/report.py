"""The per-subject HTML report of one person in one finished run.

:func:`subject_report_html` builds one self-contained page that opens offline. Its first page
is the person's **verdict** (:mod:`emocore.stats.verdict`): the sentence, the primary analysis named
before the results, what the test could have found (the detectable effect), and, on a synthetic
cohort, who was planted. Then the person's findings per design and model family (every one but
the primary analysis labelled "exploratory: not part of the verdict"), the model version,
config and data provenance (the cache key the run recorded), and per design: accuracy beside the
other people ("others (n)", never a mean that includes the person) with the split and chance
level beside every number, what each emotion was mistaken for, the person's tests and fold
stability, the misclassified scenes and the movie timeline. :func:`write_subject_report`
stores it as ``<run>/reports/sub-XX.html`` and records it in the registry; :func:`render_pdf`
prints it. No streamlit here.

**No script runs in a report.** Every value from a cache, registry, study.json, assessment or
annotation is escaped by the templates (jinja2, autoescape on); the charts are static SVG
images (:mod:`emocore.reporting.report_figures`), so the page needs no script, and its
Content-Security-Policy (:data:`CSP`, the first element of ``<head>``) forbids every one: a
value that still smuggled markup in could neither run a script nor load anything, in a browser
or in the PDF printer.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from emocore import __version__
from emocore._io import atomic_write_text
from emocore.data.cache import VolumeCache
from emocore.data.synthetic import planted_subjects
from emocore.errors import ConfigError, EmocoreError, RegistryError
from emocore.reporting.figures import others_label
from emocore.reporting.report_figures import subject_vs_others_svg, svg_data_uri, timeline_svg
from emocore.runs.registry import Registry
from emocore.runs.results import RunResults, read_table
from emocore.stats.findings import (
    ROLE_CAPTION,
    TEST_CAPTION,
    RunFindings,
    measure_label,
    p_is,
    person_summary,
    person_table,
    predates_message,
    stability_sentence,
    with_assessment,
)
from emocore.stats.summaries import (
    misclassification_summary,
    misclassified_scenes,
    per_subject_metrics,
    scenes_table,
)
from emocore.stats.summaries import percent as _pct
from emocore.stats.verdict import DESIGN_WORDS, EXPLORATORY, Primary, planted_note

__all__ = [
    "CSP",
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

#: How every design and model family other than the primary analysis is labelled.
#: The report's Content-Security-Policy: no script, no plugin, no request of any kind; images
#: only from ``data:`` URIs (its charts), styles only its own inline ones. A meta policy must
#: come before anything it protects, so it is the first element of ``<head>``.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'


# -- HTML ------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.notice{background:#fff3cd;border:1px solid #e0c060;padding:.8em 1em;border-radius:6px}
.verdict{border-left:6px solid #33415C;background:#eef1f6;padding:.7em 1em;margin:.8em 0;
border-radius:4px}.verdict.flagged{border-left-color:#D55E00;background:#fbeee4}
.verdict .sentence{font-size:1.15em;margin:.2em 0 .5em}
.synthetic{border:1px dashed #8a6d00;background:#fffbe8;padding:.5em 1em;border-radius:4px}
.notice.small{font-size:.85em;padding:.5em .8em}
ul.compact{font-size:.88em;margin:.3em 0 .8em;padding-left:1.3em}ul.compact li{margin:.12em 0}
.role{font-size:.8em;font-weight:normal;padding:.1em .5em;border-radius:3px;white-space:nowrap}
.role.primary{background:#33415C;color:#fff}.role-line{margin:1.6em 0 -.6em}.role.exploratory{background:#e6e6e6;color:#444}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:.9em;text-align:left}th{background:#f3f3f3}.muted{color:#666;font-size:.9em}
table.settings th{font-weight:normal;color:#444;white-space:nowrap}
img.chart{display:block;width:100%;max-width:820px;height:auto;margin:.3em 0 1em}
@page{size:A4;margin:18mm 15mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10.5pt}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
#page-1{break-after:page;page-break-after:always}
table,figure,img,.notice,.verdict,.keep{break-inside:avoid;page-break-inside:avoid}
h1,h2,h3,summary{break-after:avoid;page-break-after:avoid}
table.long{break-inside:auto;page-break-inside:auto}
tr{break-inside:avoid}td,th{font-size:8.5pt;padding:2px 6px}
details{display:block}details>summary{list-style:none;font-weight:bold}
a{color:inherit;text-decoration:none}}
"""

_TEMPLATES = {
    "report.html": """<!DOCTYPE html>
<html lang="en"><head>{{ csp_meta }}<meta charset="utf-8">
<title>emocore report — sub-{{ subject }}, run {{ run_id }}</title><style>{{ css }}</style></head>
<body>
<section id="page-1">
<h1>emocore report — sub-{{ subject }}</h1>
<p class="muted">Run {{ run_id }} · made {{ made }} · emocore {{ version }}</p>
{% include "verdict.html" %}
<p class="notice small"><b>{{ notice }}</b></p>
</section>
{% include "findings.html" %}
{% include "provenance.html" %}
{% for d in designs %}{% include "design.html" %}{% endfor %}
<p class="notice">{{ notice }}</p>
</body></html>
""",
    "verdict.html": """<section id="verdict">
{% if verdict %}
<div class="verdict{{ ' flagged' if verdict.status == 'flagged' else '' }}">
<p class="sentence"><b>{{ verdict.sentence }}</b></p>
<p>{{ primary_line }} Compared with {{ verdict.others }}{% if verdict.split %} (split: {{ verdict.split }}){% endif %}, α = {{ verdict.alpha }}. Every other design is {{ exploratory }}.</p>
</div>
{% else %}
<div class="verdict"><p class="sentence"><b>{{ no_verdict }}</b></p><p>{{ primary_line }}</p></div>
{% endif %}
{% if planted is not none %}
<p class="synthetic"><b>Synthetic data (planted: {{ planted.people }}).</b> {{ planted.note }}</p>
{% endif %}
{{ assessed }}
{% if verdict and verdict.detectable %}
<h3>What the test could have found</h3>
<p class="muted">For this person's volume counts and {{ verdict.others }}, simulated with the same tests in the same order, for a person otherwise like the others' mean:</p>
<ul class="compact">{% for line in verdict.detectable %}<li>{{ line }}</li>{% endfor %}</ul>
{% endif %}
</section>
""",
    "assessed.html": """<p><b>sub-{{ subject }} was not in run {{ run_id }}'s cohort</b>: the person was added after the study and assessed against it (assessment run {{ assess_run_id }}); the cohort's models were not changed.</p>
<ul>{% for line in lines %}<li>{{ line }}</li>{% endfor %}</ul>
""",
    "findings.html": """<section id='findings'>
<h2>Findings per design: is sub-{{ subject }}'s decoding unusual against the other people?</h2>
{% if verdict %}
<p class="muted"><b>How the verdict was tested.</b> {{ verdict.procedure }}.</p>
{% if verdict.flagged %}
<ul class="compact muted">{% for f in verdict.flagged %}<li>{{ f.what }}: {{ f.details }}</li>{% endfor %}</ul>
{% endif %}
{% endif %}
{% if findings.available %}
{% for f in findings.families %}
<p><span class="role {{ f.role }}">{{ f.role_label }}</span> {{ f.line }}</p>
{% if f.flagged %}<ul>{% for item in f.flagged %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}
{% endfor %}
{% if findings.message %}<p>{{ findings.message }}</p>{% endif %}
<p class='muted'>{{ findings.caption }}.</p>
{% else %}
<p>{{ findings.message }}</p>
{% endif %}
</section>
""",
    "provenance.html": """<h2>Model and data</h2>
<table>{% for name, value in provenance.rows %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
{% if provenance.changed %}<p class='notice'>{{ provenance.changed }}</p>{% endif %}
<h3>{{ provenance.source_title }}</h3>{{ settings(provenance.source) }}
<h3>Preparation and label settings</h3>{{ settings(provenance.options) }}
<details open><summary>Model and training settings</summary>{{ settings(provenance.config) }}</details>
""",
    "design.html": """<section class="design">
<div class="keep"><p class="role-line"><span class="role {{ d.role }}">{{ d.role_label }}</span></p>
<h2>{{ d.name }} — {{ d.tag }}</h2>
<p class="muted">{{ d.note }}</p>
<p>Balanced accuracy of sub-{{ subject }}: <b>{{ d.mine }}</b> (split: {{ d.split }}; chance {{ d.chance }}) — {{ d.others }}: mean {{ d.others_mean }}, {{ d.others_range }}. The model over all {{ d.n_people }} people pooled: {{ d.pooled }} (split: {{ d.split }}; permutation chance {{ d.chance_perm }}, {{ d.p }}).</p>
<h3>Per emotion (recall): sub-{{ subject }} vs {{ d.others }} — {{ d.tag }}</h3>
{{ d.recall_table }}
<img class="chart" alt="{{ d.bars_alt }}" src="{{ d.bars }}"></div>
<h3>What each emotion was predicted as</h3><ul>{% for s in d.sentences %}<li>{{ s }}</li>{% endfor %}</ul>
<h3>Single-case tests: sub-{{ subject }} against the other people (CNN) — {{ d.tag }}</h3>
{% if d.tests %}
<p>{{ d.tests.summary }}</p>
{{ d.tests.table }}
<p class='muted'>{{ d.tests.caption }}; α = {{ d.tests.alpha }}.</p>
<p>{{ d.tests.stability }}</p>
{% else %}
<p class='muted'>none: this run predates single-case findings (see above)</p>
{% endif %}
<h3>Misclassified scenes</h3>
{{ d.scenes }}
<h3>Movie timeline</h3>
<p class="muted">{{ d.timeline_title }}</p>
<img class="chart" alt="{{ d.timeline_alt }}" src="{{ d.timeline }}">
</section>
""",
    "settings.html": """{% macro settings(rows) %}{% if rows %}<table class='settings'>{% for k, v in rows %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>{% else %}<p class='muted'>not recorded</p>{% endif %}{% endmacro %}""",
}
#: Autoescape on for every template: a value is text unless it is a :class:`Markup` made here
#: (pandas tables written with ``escape=True``, the nested templates' output).
_ENV = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _render(name: str, **values: Any) -> Markup:
    settings = _ENV.get_template("settings.html").module.settings  # type: ignore[attr-defined]
    return Markup(_ENV.get_template(name).render(settings=settings, **values))


def _table(frame: pd.DataFrame) -> Markup:
    if frame.empty:
        return Markup("<p class='muted'>none</p>")
    # a long table may break across printed pages; a short one is kept whole
    classes = "long" if len(frame) > 20 else None
    out = frame.to_html(index=False, escape=True, border=0, na_rep="n/a", classes=classes)
    # "100.0 %" in a narrow printed column broke at its space, leaving "%" alone on a line
    return Markup(out.replace(" %</td>", "&nbsp;%</td>"))


def _role_label(role: str) -> str:
    return "primary analysis (the verdict)" if role == "primary" else EXPLORATORY


# -- page 1: the verdict ---------------------------------------------------------------------
def _primary_line(primary: Primary) -> str:
    why = primary.to_dict()["why"]
    if primary.how == "older run":  # to_dict() says "chosen with --primary" for any non-default
        default = Primary(primary.design, primary.model).to_dict()["why"]
        why = "this run predates named primary analyses, so the default is used: " + default
    return f"Primary analysis, named before the results: {primary.label} ({why})."


def _planted(cache: VolumeCache | None, subject: str) -> dict[str, str] | None:
    """Who a synthetic cohort planted (None on real data or without a cache)."""
    if cache is None:
        return None
    root = cache.source_path("root")  # older manifests stored it relative
    planted = planted_subjects(root) if root is not None else None
    note = planted_note(planted, subject)
    if planted is None or note is None:
        return None
    # the short label ("Synthetic data (planted: ...)") leads; the note's opening says it again
    lead = "Synthetic data: the generator"
    if note.startswith(lead):
        note = "The generator" + note.removeprefix(lead)
    return {"people": ", ".join(f"sub-{p}" for p in planted) or "nobody", "note": note}


def _verdict_view(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """A verdict as page 1 shows it: the sentence, who it was compared with, the detectable
    effects' sentences and the statistics of each flagged finding."""
    if verdict is None:
        return None
    found = list(verdict.get("detectable_effect") or [])
    n = int(verdict.get("n_others") or 0)
    return {
        "status": verdict.get("status"),
        "sentence": verdict.get("sentence", ""),
        "others": others_label(n),
        "split": verdict.get("split"),
        "alpha": f"{float(verdict.get('alpha') or 0.05):g}",
        "detectable": [d.get("sentence", "") for d in found],
        "procedure": verdict.get("procedure", ""),
        "flagged": [
            {"what": measure_label(f), "details": f.get("details") or ""}
            for f in verdict.get("flagged") or []
        ],
    }


def _assessed(assessment: dict[str, Any] | None, subject: str, run_id: str) -> Markup:
    if assessment is None:
        return Markup("")
    lines = []
    for design, d in assessment.get("designs", {}).items():
        if d.get("status") != "assessed":
            what = str(d.get("reason", d.get("status")))
        elif design == "single-subject":
            what = "the person's own model, cross-validated with the run's configuration and folds"
        else:
            what = (
                f"decoded by {len(d.get('models', []))} cohort models that never saw sub-{subject}"
            )
        lines.append(f"{design}: {what}")
    return _render(
        "assessed.html",
        subject=subject,
        run_id=run_id,
        assess_run_id=str(assessment.get("assess_run_id")),
        lines=lines,
    )


# -- the findings per design and model family ------------------------------------------------
def _family_line(found: RunFindings, subject: str, design: str, model: str, role: str) -> str:
    if role != "primary":
        return person_summary(found, subject, design, model=model)
    mine = found.person(subject, design, model=model)
    tested = mine[mine["p"].notna()]
    where = f"{DESIGN_WORDS.get(design, design)}, {'CNN' if model == 'cnn' else model}"
    if tested.empty:
        return person_summary(found, subject, design, model=model)
    n_flag = int(tested["flagged"].astype(bool).sum())
    return (
        f"{where}: the verdict's {len(tested)} tests against "
        f"{others_label(int(tested['n_others'].max()))}, in the order fixed in advance; "
        f"{n_flag} flagged (page 1)."
    )


def _findings_view(
    found: RunFindings, subject: str, run_id: str, designs: list[str]
) -> dict[str, Any]:
    """The person's findings per design and model family, the primary analysis first; a run
    made before single-case findings (whose primary analysis' tests were computed from its
    predictions, :attr:`emocore.runs.results.RunResults.findings`) says which designs have none."""
    if not found.available:
        return {"available": False, "message": predates_message(run_id)}
    mine = found.table[found.table["subject"] == subject]
    pairs = list(mine[["design", "model"]].drop_duplicates().itertuples(index=False, name=None))
    pairs.sort(key=lambda pair: found.role(*pair) != "primary")  # the primary analysis first
    missing = [d for d in designs if d not in {design for design, _ in pairs}]
    families = []
    for design, model in pairs:
        role = found.role(design, model)
        rows = mine[(mine["design"] == design) & (mine["model"] == model)]
        items = (
            [] if role == "primary" else list(rows.loc[rows["flagged"].astype(bool), "sentence"])
        )
        families.append(
            {
                "role": role,
                "role_label": _role_label(role),
                "line": _family_line(found, subject, design, model, role),
                "flagged": [str(i) for i in items],
            }
        )
    for design in missing:
        families.append(
            {
                "role": found.role(design),
                "role_label": _role_label(found.role(design)),
                "line": f"{design}, CNN: no single-case tests recorded.",
                "flagged": [],
            }
        )
    caption = f"{ROLE_CAPTION['primary']}. {ROLE_CAPTION['exploratory']}. {TEST_CAPTION}"
    return {
        "available": True,
        "families": families,
        "caption": caption,
        "message": predates_message(run_id) if missing else None,
    }


# -- provenance ------------------------------------------------------------------------------
def _provenance(record: Any, study: dict[str, Any], cache: VolumeCache | None) -> dict[str, Any]:
    """The run's data version as the run recorded it (study.json ``cache.key``), and one line
    when the cache here has changed since."""
    recorded = dict(study.get("cache", {}))
    key = recorded.get("key")
    source: Any = {}
    options: Any = recorded.get("options") or {}
    changed = None
    source_title = "Data source"
    if cache is not None:
        source = cache.manifest.get("source", {})
        if not options:
            options = cache.manifest.get("options", {})
        if cache.key != key:
            # recognises(): a cache that only had people added still holds the run's data
            if cache.recognises(key):
                changed = f"the cache has changed since: now {cache.key}, e.g. a person was added"
            else:
                changed = (
                    f"the cache has changed since: now {cache.key}, and it no longer holds the "
                    "data this run was trained on (a person rebuilt or the labels rewritten)"
                )
            source_title = "Data source (of the cache now)"
    rows = [
        ("emocore version (run)", study.get("emocore_version")),
        ("emocore version (report)", __version__),
        ("run id", study.get("run_id", record.id)),
        ("run created", record.created_at),
        ("cache key (data version, as the run recorded it)", key),
        ("subjects in the study", ", ".join(f"sub-{s}" for s in study.get("subjects", []))),
    ]
    return {
        "rows": [(name, _setting_value(value)) for name, value in rows],
        "changed": changed,
        "source_title": source_title,
        "source": settings_rows(source),
        "options": settings_rows(options),
        "config": settings_rows(study.get("config", {})),
    }


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
    "primary": ("primary analysis (--primary)", "the default (page 1)", {}),
    "focus": ("emotions tested first (the clinical question)", "LOVE, FEAR", {}),
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


# -- per design ------------------------------------------------------------------------------
def _design_view(
    design: str,
    table: pd.DataFrame,
    subject: str,
    classes: list[str],
    headline: dict[str, Any],
    found: RunFindings,
    role: str,
) -> dict[str, Any]:
    split = str(table["split"].iloc[0]) if "split" in table else headline.get("split", "?")
    chance_k = 1.0 / len(classes)
    tag = f"split: {split}; chance {_pct(chance_k)} (1/{len(classes)} classes)"
    scores = per_subject_metrics(table, classes=classes)
    me = scores[scores["subject"] == subject].iloc[0]
    others = scores[scores["subject"] != subject]
    n = len(others)
    rows = [
        {
            "emotion": c,
            f"sub-{subject}": _pct(me[f"accuracy_{c}"]),
            f"{others_label(n)}: mean": _pct(others[f"accuracy_{c}"].mean()) if n else "n/a",
            "split": split,
            "chance": _pct(chance_k),
        }
        for c in classes
    ]
    if found.available and len(found.person(subject, design)):
        tests: dict[str, Any] | None = {
            "summary": _family_line(found, subject, design, "cnn", role),
            "table": _table(person_table(found.person(subject, design))),
            "caption": f"{ROLE_CAPTION[role]}. {TEST_CAPTION}",
            "alpha": f"{found.alpha:g}",
            "stability": stability_sentence(
                found.stability_of(subject, design), subject=subject, design=design, split=split
            ),
        }
    else:
        tests = None
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
    ba = others["balanced_accuracy"]
    return {
        "name": design,
        "role": role,
        "role_label": _role_label(role),
        "tag": tag,
        "split": split,
        "note": note,
        "mine": _pct(me["balanced_accuracy"]),
        "chance": _pct(chance_k),
        "others": others_label(n),
        "others_mean": _pct(ba.mean()) if n else "n/a",
        "others_range": f"range {_pct(ba.min())} to {_pct(ba.max())}" if n else "no range",
        "n_people": len(scores),
        "pooled": _pct(headline.get("balanced_accuracy")),
        "chance_perm": _pct(headline.get("chance_balanced_accuracy")),
        "p": p_is(headline.get("p_value")),
        "recall_table": _table(pd.DataFrame(rows)),
        "bars": svg_data_uri(
            subject_vs_others_svg(me, scores, classes, subject=subject, chance=chance_k)
        ),
        "bars_alt": f"Recall per emotion: sub-{subject} vs {others_label(n)}, mean ± SD",
        "sentences": [misclassification_summary(table, subject, c)["sentence"] for c in classes],
        "tests": tests,
        "scenes": _table(scenes),
        "timeline_title": f"sub-{subject}, {design}: true vs predicted ({split}), over the movie.",
        "timeline": svg_data_uri(timeline_svg(mine)),
        "timeline_alt": f"Timeline of sub-{subject}'s true and predicted emotions, {design}",
    }


def subject_report_html(
    registry: Registry | str | Path,
    run_id: str,
    subject: str,
    cache: VolumeCache | str | Path | None = None,
) -> str:
    """A self-contained HTML report of one person in one finished run (see the module)."""
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
    primary = run.primary
    found = run.findings
    if assessment is not None:
        found = with_assessment(found, assessment)
    try:
        verdict = run.verdict(subject)  # an assessed newcomer's is the assessment's
    except EmocoreError as exc:
        logger.warning("no verdict on sub-%s in run %s: %s", subject, run_id, exc)
        verdict = None
    vc = VolumeCache(cache) if isinstance(cache, (str, Path)) else cache
    heads = {r["design"]: r for r in study.get("results", []) if r.get("model") == "cnn"}

    def role(design: str) -> str:
        return "primary" if (design, "cnn") == (primary.design, primary.model) else "exploratory"

    designs = [
        _design_view(design, rows, subject, classes, heads.get(design, {}), found, role(design))
        for design, rows in predictions.groupby("design", sort=False)
        if (rows["subject"] == subject).any()
    ]
    if not designs:
        raise RegistryError(f"run {run_id} has no held-out predictions of sub-{subject}")
    designs.sort(key=lambda d: d["role"] != "primary")  # the primary analysis' design first
    page = _render(
        "report.html",
        csp_meta=Markup(_CSP_META),
        css=Markup(_CSS),
        subject=subject,
        run_id=run_id,
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        notice=RESEARCH_NOTICE,
        verdict=_verdict_view(verdict),
        no_verdict=(
            f"sub-{subject} has no verdict in run {run_id}: its primary analysis "
            f"({primary.label}) holds no held-out predictions of this person."
        ),
        primary_line=_primary_line(primary),
        exploratory=EXPLORATORY,
        planted=_planted(vc, subject),
        assessed=_assessed(assessment, subject, run_id),
        findings=_findings_view(found, subject, run_id, [d["name"] for d in designs]),
        provenance=_provenance(record, study, vc),
        designs=designs,
    )
    return str(page)


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
)
# Scripts: ``--blink-settings=scriptEnabled=false`` would be the obvious switch, but this
# headless chromium (156) then prints nothing at all and still exits 0. So the page itself
# forbids scripts: render_pdf prints a copy carrying the report's Content-Security-Policy
# (:func:`_with_csp`), which blocks every script and inline handler and still prints; the
# report needs none (its charts are SVG images).
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)


def _with_csp(text: str) -> str:
    """``text`` (an HTML page) with :data:`CSP` as the first element of its head, so no script
    of the page runs when it is printed: reports written before the policy existed, or any
    other page handed to :func:`render_pdf`, included."""
    head = _HEAD.search(text)
    if head is not None and text[head.end() :].lstrip().startswith(_CSP_META):
        return text
    if head is not None:
        return text[: head.end()] + _CSP_META + text[head.end() :]
    # no <head>: right after the doctype (before it, the page would be read in quirks mode),
    # where the parser opens the head the policy then lives in
    doctype = _DOCTYPE.match(text)
    at = doctype.end() if doctype else 0
    return text[:at] + _CSP_META + text[at:]


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

    No script of the page runs: chromium prints a copy that carries the report's
    Content-Security-Policy (:data:`CSP`), added where the page lacks it.

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
        printed = Path(profile) / "report.html"
        printed.write_text(_with_csp(html_path.read_text(encoding="utf-8")), encoding="utf-8")
        command = [
            str(browser),
            *_CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={partial}",
            printed.as_uri(),
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
