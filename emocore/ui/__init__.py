"""The dashboard's shared widgets and cached loaders: the only emocore code that imports streamlit.

Pages stay short: ``s = ui.page("Title")``, ``ctx = ui.require_run(s)``, then emocore calls
through the loaders in :mod:`emocore.ui.loaders` and figures from :mod:`emocore.reporting.figures`.
"""

from __future__ import annotations

from emocore.ui import loaders
from emocore.ui.curves import training_curves_block
from emocore.ui.tables import (
    FLAGGED_COLUMNS,
    RESULTS_COLUMNS,
    SCENES_COLUMNS,
    VERDICT_COLUMNS,
    tuning_block,
)
from emocore.ui.timeline import every_volume_block, movie_windows, timeline_view
from emocore.ui.verdict import (
    EXPLORATORY,
    assessment_block,
    exploratory_flags,
    opening_emotion,
    primary_caption,
    verdict_banner,
    verdicts_overview,
)
from emocore.ui.widgets import (
    RunContext,
    chance_caption,
    collapse_warning,
    completed_runs,
    design_label,
    design_picker,
    exploratory_caption,
    finding_block,
    guard,
    inference_caption,
    job_monitor,
    linked_subject,
    no_findings_note,
    page,
    pct,
    pick_run,
    primary_design,
    primary_first,
    progress_callback,
    require_run,
    research_notice,
    run_findings,
    subject_picker,
)

__all__ = [
    "EXPLORATORY",
    "assessment_block",
    "exploratory_flags",
    "verdicts_overview",
    "opening_emotion",
    "primary_caption",
    "verdict_banner",
    "FLAGGED_COLUMNS",
    "RESULTS_COLUMNS",
    "SCENES_COLUMNS",
    "VERDICT_COLUMNS",
    "tuning_block",
    "RunContext",
    "chance_caption",
    "collapse_warning",
    "completed_runs",
    "design_label",
    "design_picker",
    "every_volume_block",
    "exploratory_caption",
    "finding_block",
    "guard",
    "inference_caption",
    "job_monitor",
    "linked_subject",
    "loaders",
    "movie_windows",
    "no_findings_note",
    "page",
    "pct",
    "pick_run",
    "primary_design",
    "primary_first",
    "progress_callback",
    "require_run",
    "research_notice",
    "run_findings",
    "subject_picker",
    "timeline_view",
    "training_curves_block",
]
