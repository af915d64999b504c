"""The glass-brain (maximum-intensity) panels say which side is which."""

from __future__ import annotations

import numpy as np

from emocore.reporting import figures

SHAPE = (7, 8, 9)  # unequal sides, so axis mix-ups fail


def test_every_glass_brain_panel_marks_its_sides_where_the_data_lies() -> None:
    # a blob in the person's left (low x), front (high y), top (high z)
    m = np.zeros(SHAPE)
    m[1, 6, 7] = 1.0
    fig = figures.saliency_mips({"LOVE": m, "FEAR": m * 0.5})
    marks: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for a in fig.layout.annotations:
        if a.xref and a.xref.endswith("domain"):
            marks.setdefault((a.xref, a.yref), {})[a.text.strip("<b>/")] = (a.x, a.y)
    assert len(marks) == 6, "each of the 2 x 3 panels marks its sides"
    top, front, side = (marks[(f"x{n} domain", f"y{n} domain")] for n in ("", "2", "3"))
    assert top == {"L": (0, 0.5), "R": (1, 0.5), "A": (0.5, 1), "P": (0.5, 0)}
    assert front == {"L": (0, 0.5), "R": (1, 0.5), "S": (0.5, 1), "I": (0.5, 0)}
    assert side == {"P": (0, 0.5), "A": (1, 0.5), "S": (0.5, 1), "I": (0.5, 0)}
    # the data agree with the marks: the blob is drawn near L, A and S (rows run upwards)
    views = [np.asarray(t.z) for t in fig.data[:3]]
    rows, cols = zip(*(np.unravel_index(np.argmax(v), v.shape) for v in views), strict=True)
    assert cols[0] < SHAPE[0] / 2 and rows[0] > SHAPE[1] / 2  # from above: left, front up
    assert cols[1] < SHAPE[0] / 2 and rows[1] > SHAPE[2] / 2  # from behind: left, top up
    assert cols[2] > SHAPE[1] / 2 and rows[2] > SHAPE[2] / 2  # from the right: front, top up
    assert not any(fig.layout[f"yaxis{n}"].autorange == "reversed" for n in ("", "2", "3"))
    titles = [a.text for a in fig.layout.annotations if not (a.xref or "").endswith("domain")]
    assert any("from above" in t for t in titles) and any("from the right" in t for t in titles)
