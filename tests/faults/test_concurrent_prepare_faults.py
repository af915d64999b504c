"""Two prepares of one cache at once, as two real processes (issue 22, item 4): both people end
up in the manifest, whichever finishes first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emocore.constants import RUN_N_VOLUMES, bold_filename
from emocore.data.cache import open_cache
from emocore.data.prepare import prepare
from tests.conftest import write_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def three_people(tiny_dataset) -> tuple[Path, Path]:
    root, ann = tiny_dataset
    for run, n in enumerate(RUN_N_VOLUMES, start=1):
        write_run(root / bold_filename("03", run), n, seed=30 + run)
    return root, ann


def _start(root: Path, ann: Path, cache: Path, subject: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emocore.cli", "-q", "prepare", "--bids", str(root)]
        + ["--annotations", str(ann), "--cache", str(cache), "--subject", subject, "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _both(root: Path, ann: Path, cache: Path, first: str, second: str) -> list[dict]:
    procs = [_start(root, ann, cache, s) for s in (first, second)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out) for out, _ in outs]


@pytest.mark.slow
def test_two_additions_at_once_keep_both_people(three_people, tmp_path: Path) -> None:
    root, ann = three_people
    cache = tmp_path / "cache"
    prepare(root, ann, cache, subjects=["01"])
    said = _both(root, ann, cache, "02", "03")
    assert sorted(a for s in said for a in s["added"]) == ["02", "03"]  # each said "added"
    manifest = json.loads((cache / "manifest.json").read_text())
    assert sorted(manifest["subjects"]) == ["01", "02", "03"]
    opened = open_cache(cache)
    assert opened.subjects == ["01", "02", "03"]
    assert all(opened.array(s).shape[0] == sum(RUN_N_VOLUMES) for s in opened.subjects)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations", "cache", "ds"]
    assert not list(cache.glob(".*lock*")) and not list(cache.glob("*.partial-*"))


@pytest.mark.slow
def test_two_first_builds_at_once_keep_both_people(three_people, tmp_path: Path) -> None:
    root, ann = three_people
    cache = tmp_path / "new" / "cache"  # neither the cache nor its folder exists yet
    said = _both(root, ann, cache, "01", "02")
    assert sorted(s["action"] for s in said) == ["added", "built"]
    assert open_cache(cache).subjects == ["01", "02"]
    assert sorted(p.name for p in cache.parent.iterdir()) == ["cache"]  # no lock file left
