"""Files keep the user's umask; unwritable and unreadable folders give clear errors (issue 10)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from emocore._io import atomic_path, atomic_write_json, atomic_write_text
from emocore.labels import write_label_table


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)

    def use(mask: int) -> None:
        os.umask(mask)

    yield use
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writers_keep_the_umask(tmp_path: Path, umask, mask: int, expected: int) -> None:
    umask(mask)
    written = [
        atomic_write_text(tmp_path / "predictions.tsv", "a\tb\n"),
        atomic_write_json(tmp_path / "study.json", {"a": 1}),
        write_label_table(pd.DataFrame({"run": [1], "label": ["NONE"]}), tmp_path / "l.tsv"),
    ]
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    written.append(tmp_path / "model.pt")
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(expected) for p in written}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_synthetic_cohort_folder_keeps_the_umask(tmp_path: Path, umask, monkeypatch) -> None:
    from emocore.data import synthetic

    monkeypatch.setattr(synthetic, "_write", lambda root, cfg, progress: None)  # the folder only
    umask(0o022)
    out = synthetic.generate_cohort(tmp_path / "cohort", synthetic.SynthConfig(n_subjects=1))
    assert oct(_mode(out)) == oct(0o755)
