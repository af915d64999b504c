"""Plotly figures of the dashboard and the reports: pure functions returning ``go.Figure``.

Every figure colours classes with :data:`emocore.constants.EMOTION_COLORS`, labels its colour
scales and, where it shows accuracy, names the split and the chance level in its title. No
streamlit here; the inputs are tables and arrays that emocore writes (see :mod:`emocore.workflows.study`).

One module per concept, every public name re-exported here:

* :mod:`~emocore.reporting.figures.timeline`: predictions over movie time;
* :mod:`~emocore.reporting.figures.accuracy`: recall, confusion, what the model answered, CNN
  vs linear;
* :mod:`~emocore.reporting.figures.curves`: training curves;
* :mod:`~emocore.reporting.figures.cohort`: one person against the others;
* :mod:`~emocore.reporting.figures.embedding`: the hidden layer's PCA;
* :mod:`~emocore.reporting.figures.brains`: slices and glass brains;
* :mod:`~emocore.reporting.figures.annotations`: the observers' labels;
* :mod:`~emocore.reporting.figures.style`: the styling they share.
"""

from emocore.reporting.figures.accuracy import (
    accuracy_heatmap,
    confusion_figure,
    misclassification_pie,
    model_comparison,
    none_predictions_figure,
)
from emocore.reporting.figures.annotations import (
    agreement_histogram,
    category_bars,
    category_map_table,
    cooccurrence_heatmap,
    label_counts_figure,
    label_timeline,
)

# SALIENCY_SCALE was importable from here before the split, though never in __all__
from emocore.reporting.figures.brains import SALIENCY_SCALE as SALIENCY_SCALE
from emocore.reporting.figures.brains import (
    orthogonal_slices,
    saliency_mips,
    saliency_title,
)
from emocore.reporting.figures.cohort import (
    others_label,
    others_recall,
    single_case_dots,
    subject_vs_cohort,
)
from emocore.reporting.figures.curves import (
    CURVE_METRICS,
    balanced_curves_recorded,
    training_curves,
)
from emocore.reporting.figures.embedding import embedding_scatter
from emocore.reporting.figures.style import LEGEND_ORDER, MOVIE_TIME_TITLE
from emocore.reporting.figures.timeline import TIMELINE_LEGEND, TIMELINE_ROWS, timeline

__all__ = [
    "accuracy_heatmap",
    "agreement_histogram",
    "category_map_table",
    "balanced_curves_recorded",
    "category_bars",
    "CURVE_METRICS",
    "LEGEND_ORDER",
    "MOVIE_TIME_TITLE",
    "cooccurrence_heatmap",
    "confusion_figure",
    "embedding_scatter",
    "label_counts_figure",
    "label_timeline",
    "misclassification_pie",
    "model_comparison",
    "orthogonal_slices",
    "saliency_mips",
    "saliency_title",
    "single_case_dots",
    "subject_vs_cohort",
    "others_label",
    "others_recall",
    "none_predictions_figure",
    "timeline",
    "TIMELINE_LEGEND",
    "TIMELINE_ROWS",
    "training_curves",
]
