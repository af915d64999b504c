"""The dashboard's shared widgets and cached loaders: the only emocore code that imports streamlit.

Pages stay short: ``s = ui.page("Title")``, ``ctx = ui.require_run(s)``, then emocore calls
through the loaders in :mod:`emocore.ui.loaders` and figures from :mod:`emocore.figures`.
"""

from __future__ import annotations

from emocore.ui import loaders
from emocore.ui.curves import training_curves_block
from emocore.ui.tables import FLAGGED_COLUMNS, RESULTS_COLUMNS, SCENES_COLUMNS, tuning_block
from emocore.ui.timeline import every_volume_block, movie_windows, timeline_view
from emocore.ui.widgets import (
    RunContext,
    chance_caption,
    collapse_warning,
    completed_runs,
    design_picker,
    finding_block,
    guard,
    inference_caption,
    job_monitor,
    page,
    pct,
    pick_run,
    progress_callback,
    require_run,
    research_notice,
    run_findings,
    subject_picker,
)

__all__ = [
    "FLAGGED_COLUMNS",
    "RESULTS_COLUMNS",
    "SCENES_COLUMNS",
    "tuning_block",
    "RunContext",
    "chance_caption",
    "collapse_warning",
    "completed_runs",
    "design_picker",
    "every_volume_block",
    "finding_block",
    "guard",
    "inference_caption",
    "job_monitor",
    "loaders",
    "movie_windows",
    "page",
    "pct",
    "pick_run",
    "progress_callback",
    "require_run",
    "research_notice",
    "run_findings",
    "subject_picker",
    "timeline_view",
    "training_curves_block",
]
