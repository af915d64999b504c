"""What prepare reads (issue 22): a corrupt .nii.gz (item 3), symbolic-link loops in the
dataset (item 6), subject labels that are not BIDS labels, and a repeated --subject (item 10)."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.constants import bold_filename
from emocore.data.bids import discover_dataset
from emocore.data.cache import open_cache
from emocore.data.prepare import prepare
from emocore.errors import EXIT_CODES, DataError
from emocore.runs.registry import Registry
from tests.faults.conftest import tiny_study, untrained_design

REPO = Path(__file__).resolve().parents[2]


def _prepare_args(root: Path, ann: Path, cache: Path, *subjects: str) -> list[str]:
    return ["prepare", "--bids", str(root), "--annotations", str(ann), "--cache", str(cache)] + [
        a for s in subjects for a in ("--subject", s)
    ]


# -- item 3: a corrupt .nii.gz ------------------------------------------------------------------
def _flip_middle(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01  # one bit of one byte in the middle of the compressed stream
    return bytes(out)


def _bad_crc(data: bytes) -> bytes:
    out = bytearray(data)
    out[-8] ^= 0xFF  # the trailer: CRC-32 (4 bytes), then the length (4 bytes)
    return bytes(out)


DAMAGE = {
    "a flipped byte": _flip_middle,
    "no trailer": lambda data: data[:-8],
    "an altered CRC": _bad_crc,
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_corrupt_gzip_is_refused_naming_the_file(
    tiny_dataset, tmp_path: Path, capsys, how: str
) -> None:
    root, ann = tiny_dataset
    path = root / bold_filename("01", 3)
    original = path.read_bytes()
    damaged = DAMAGE[how](original)
    assert damaged != original
    with pytest.raises((OSError, EOFError)):  # Python's gzip sees it: real bytes, really wrong
        gzip.decompress(damaged)
    path.write_bytes(damaged)
    code = main(_prepare_args(root, ann, tmp_path / "cache", "01"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"{path} is truncated or corrupt" in err and "re-download or re-copy it" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cache")] == []


def test_a_corrupt_gzip_of_a_person_added_leaves_the_cache_as_it_was(
    tiny_dataset, tmp_path: Path
) -> None:
    root, ann = tiny_dataset
    cache = tmp_path / "cache"
    prepare(root, ann, cache, subjects=["01"])
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    path = root / bold_filename("02", 5)
    path.write_bytes(_bad_crc(path.read_bytes()))
    with pytest.raises(DataError, match="run-05_bold.nii.gz is truncated or corrupt .*CRC check"):
        prepare(root, ann, cache, subjects=["02"])
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
    assert open_cache(cache).subjects == ["01"]


# -- item 6: symbolic-link loops --------------------------------------------------------------
def test_symlink_loops_in_the_dataset_do_not_hang_prepare(tiny_dataset, tmp_path: Path) -> None:
    root, ann = tiny_dataset
    func = (root / bold_filename("01", 1)).parent
    (func / "loop").symlink_to(".")
    (func / "loop2").symlink_to(Path("..") / "func")
    (func.parent / "up").symlink_to("..")
    done = subprocess.run(
        [sys.executable, "-m", "emocore.cli", "-q"]
        + _prepare_args(root, ann, tmp_path / "cache", "01", "02"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,  # the walk of the readability check went round the loops for > 300 s
    )
    assert done.returncode == 0, done.stderr
    assert open_cache(tmp_path / "cache").subjects == ["01", "02"]


# -- subject labels outside BIDS's alphanumeric labels ---------------------------------------
def _rename_person(root: Path, old: str, new: str) -> Path:
    """Move sub-<old> (folder and file names) to sub-<new>; return the new folder."""
    folder = (root / bold_filename(old, 1)).parents[2]
    target = folder.with_name(f"sub-{new}")
    shutil.move(folder, target)
    for path in sorted(target.rglob(f"sub-{old}_*")):
        path.rename(path.with_name(path.name.replace(f"sub-{old}_", f"sub-{new}_")))
    return target


@pytest.mark.parametrize(
    "label", ["<img src=x onerror=document.body.innerText='FORGED'>", "0.2", "a_b", "x y"]
)
def test_a_subject_folder_that_is_not_a_bids_label_is_refused_by_name(
    tiny_dataset, tmp_path: Path, capsys, label: str
) -> None:
    root, ann = tiny_dataset
    folder = _rename_person(root, "02", label)
    code = main(_prepare_args(root, ann, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"{folder}: the subject label" in err and "is not a BIDS label" in err
    assert "letters and digits only" in err and "rename the folder" in err
    assert not (tmp_path / "cache").exists()


def test_a_bad_folder_label_is_refused_even_when_its_files_are_named_well(
    tiny_dataset, tmp_path: Path
) -> None:
    root, _ = tiny_dataset
    folder = (root / bold_filename("02", 1)).parents[2]
    bad = folder.with_name("sub-02<b>")
    shutil.move(folder, bad)  # the files inside still say sub-02_...
    with pytest.raises(DataError, match=r"sub-02<b>: the subject label '02<b>' is not a BIDS"):
        discover_dataset(root)
    assert discover_dataset(root, subjects=["01"]).subject_labels == ["01"]  # not read: no harm


@pytest.mark.parametrize("given", ["../x", "sub-01", "0 1"])
def test_a_subject_option_that_is_not_a_bids_label_is_refused(tiny_dataset, given: str) -> None:
    root, _ = tiny_dataset
    with pytest.raises(DataError, match="a subject is a BIDS label, letters and digits only"):
        discover_dataset(root, subjects=[given])


# -- item 10: a repeated --subject ------------------------------------------------------------
def test_a_repeated_subject_is_prepared_once(tiny_dataset, tmp_path: Path, capsys) -> None:
    root, ann = tiny_dataset
    assert main(_prepare_args(root, ann, tmp_path / "cache", "02", "01", "02", "01")) == 0
    assert "built: added sub-01, sub-02; kept none" in capsys.readouterr().out
    assert open_cache(tmp_path / "cache").subjects == ["01", "02"]
    result = prepare(root, ann, tmp_path / "cache", subjects=["01"] * 5000)
    assert result.action == "unchanged"


def test_many_unknown_subjects_give_a_short_message(tiny_dataset) -> None:
    root, _ = tiny_dataset
    asked = ["01"] + [f"x{i:04d}" for i in range(5000)]
    with pytest.raises(DataError) as info:
        discover_dataset(root, subjects=asked)
    message = str(info.value)
    assert len(message) < 500, message
    assert "x0000, x0001" in message and "and 4990 more not found below" in message
    assert "it holds 01, 02" in message


def test_study_config_keeps_each_subject_once_in_order() -> None:
    assert tiny_study(subjects=("02", "01", "02", "01")).subjects == ("02", "01")


def test_a_study_of_a_subject_given_5000_times_trains_on_it_once(
    tiny_cache, tmp_path: Path, monkeypatch
) -> None:
    from emocore.workflows import study as study_module

    monkeypatch.setattr(study_module, "run_design", untrained_design)  # bookkeeping only
    registry = Registry(tmp_path / "registry")
    done = study_module.run_study(
        tiny_cache, registry, tiny_study(subjects=("01",) * 5000), kind="train"
    )
    assert registry.get_run(done.run_id).config["subjects"] == ["01"]
    table = done.predictions()
    assert not table.duplicated(["subject", "run", "volume"]).any()
    assert set(table["subject"]) == {"01"}
