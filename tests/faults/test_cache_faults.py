"""prepare and the cache: blank runs, huge grids, odd folders and damaged manifests (issue 10)."""

from __future__ import annotations

import logging
import re
import shutil
from collections import namedtuple
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from emocore.cli import main
from emocore.constants import CLASSES, RUN_N_VOLUMES, bold_filename
from emocore.data.cache import open_cache
from emocore.data.dataset import select
from emocore.data.prepare import PrepareOptions, prepare, prepare_cache
from emocore.data.prepare import build as prepare_build
from emocore.data.prepare import folder as prepare_folder
from emocore.data.prepare import mask as prepare_mask
from emocore.data.prepare import volumes as prepare_volumes
from emocore.errors import EXIT_CODES, CacheError, DataError
from emocore.runs.registry import Registry
from tests.conftest import write_run
from tests.faults.conftest import DAMAGE, SAID, checksums, damage, read_only


def blank_run(path: Path, value: float = 0.0) -> Path:
    """Rewrite a run as the same header over constant voxels (what a failed export leaves)."""
    img = nib.load(path)
    data = np.full(img.shape, value, np.float32)
    nib.save(nib.Nifti1Image(data, img.affine, img.header), path)
    return path


def prepare_argv(root: Path, ann: Path, cache: Path, *extra: str) -> list[str]:
    return ["prepare", "--bids", str(root), "--annotations", str(ann), "--cache", str(cache)] + [
        *extra
    ]


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


# -- blank runs (item 1) --------------------------------------------------------------------
def test_blank_first_run_is_named_and_the_mask_comes_from_the_others(
    tiny_dataset, tmp_path: Path, caplog
) -> None:
    root, ann = tiny_dataset
    (ann / "av1o05.csv").write_text((ann / "av1o05.csv").read_text().splitlines()[0] + "\n")
    second = nib.load(root / bold_filename("01", 2))
    expected = prepare_mask.brain_mask(second.get_fdata().mean(axis=-1), second.affine)
    blank = blank_run(root / bold_filename("01", 1))
    with caplog.at_level(logging.WARNING, logger="emocore.data.prepare"):
        cache = prepare_cache(root, ann, tmp_path / "cache", subjects=["01"])
    said = f"{blank} is blank: every voxel is zero over its {RUN_N_VOLUMES[0]} volumes"
    assert said in caplog.text
    assert [w for w in cache.manifest["warnings"] if said in w]
    assert cache.manifest["subjects"]["01"]["runs"][0]["blank"] == "zero"
    # a header-only observer file is a warning of the manifest too (the others give labels)
    header_only = f"{ann / 'av1o05.csv'} holds no annotation rows (only the header)"
    assert [w for w in cache.manifest["warnings"] if header_only in w], cache.manifest["warnings"]
    assert "blank" not in cache.manifest["subjects"]["01"]["runs"][1]
    assert cache.mask.sum() > 0 and np.array_equal(cache.mask, expected)
    assert not np.any(cache.array("01")[: RUN_N_VOLUMES[0]])
    # the blank run's zeros keep their labels in the cache but are neither trained on nor scored
    kept = select(cache, classes=CLASSES)
    assert 1 not in set(kept["run"]) and 2 in set(kept["run"])
    assert len(select(cache, classes=CLASSES, runs=[1])) == 0


def test_a_constant_run_is_blank_too(tiny_dataset, tmp_path: Path) -> None:
    root, ann = tiny_dataset
    blank_run(root / bold_filename("01", 4), value=1000.0)
    cache = prepare_cache(root, ann, tmp_path / "cache", subjects=["01"])
    assert cache.manifest["subjects"]["01"]["runs"][3]["blank"] == "constant"
    assert any("every voxel is constant" in w for w in cache.manifest["warnings"])


def test_a_person_with_every_run_blank_is_refused_and_the_cache_kept(
    tiny_dataset, tmp_path: Path
) -> None:
    root, ann = tiny_dataset
    cache_dir = tmp_path / "cache"
    prepare_cache(root, ann, cache_dir, subjects=["01"])
    before = checksums(cache_dir)
    for run in range(1, 9):
        blank_run(root / bold_filename("02", run))
    with pytest.raises(DataError, match=r"every run of sub-02 is blank \(.*run-01_bold") as info:
        prepare_cache(root, ann, cache_dir, subjects=["01", "02"])
    assert "leave the person out (--subject)" in str(info.value)
    assert checksums(cache_dir) == before and partials(tmp_path) == []


# -- a fine target grid (item 5) ----------------------------------------------------------------
class _Stop(Exception):
    pass


def test_chunks_are_sized_on_the_finer_target_grid(tiny_dataset, tmp_path: Path, monkeypatch):
    root, ann = tiny_dataset
    chunks = []

    def first_chunk(run, chunk):
        chunks.append(chunk)
        raise _Stop  # the size is all this test needs; nothing is resampled

    monkeypatch.setattr(prepare_volumes, "_read_chunks", first_chunk)
    with pytest.raises(_Stop):
        prepare_cache(
            root, ann, tmp_path / "cache", subjects=["01"], options=PrepareOptions(grid_mm=0.5)
        )
    target = 42 * 48 * 54  # 21 x 24 x 27 mm at 0.5 mm; the source is 7 x 8 x 9
    assert chunks and chunks[0] * 4 * target <= prepare_volumes._CHUNK_BYTES
    assert not (tmp_path / "cache").exists() and partials(tmp_path) == []


def test_a_cache_the_disk_cannot_hold_is_refused_before_writing(
    tiny_dataset, tmp_path: Path, monkeypatch
) -> None:
    root, ann = tiny_dataset
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(prepare_folder.shutil, "disk_usage", lambda p: usage(2**30, 0, 2**20))
    with pytest.raises(CacheError, match=r"need 6\.9 MiB \(2 people on a 7 x 8 x 9 grid") as info:
        prepare(root, ann, tmp_path / "cache")
    assert "has 1.0 MiB free; choose a coarser --grid-mm" in str(info.value)
    assert not (tmp_path / "cache").exists() and partials(tmp_path) == []


# -- two people on one grid, other affines (item 11) ------------------------------------------
def test_two_people_on_other_affines_are_told_apart_in_words(tiny_dataset) -> None:
    root, ann = tiny_dataset
    moved = np.diag([3.0, 3.0, 3.0, 1.0])
    moved[:3, 3] = (4.5, 0.0, -1.5)
    for run, n in enumerate(RUN_N_VOLUMES, start=1):
        write_run(root / bold_filename("02", run), n, affine=moved, seed=run)
    with pytest.raises(DataError) as info:
        prepare(root, ann, root.parent / "cache")
    message = str(info.value)
    assert "has the grid (7, 8, 9) of sub-01 but another affine (voxel-to-world mapping" in message
    assert "origin at (4.5, 0, -1.5) mm against (0, 0, 0)" in message
    assert "on grid (7, 8, 9), sub-01 on (7, 8, 9)" not in message and "--grid-mm" in message


# -- odd cache folders (item 9) -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_cache_as_a_broken_symlink_fails_before_any_run_is_read(
    tiny_dataset, tmp_path: Path, capsys, monkeypatch, kind: str
) -> None:
    root, ann = tiny_dataset
    link = tmp_path / "cache"
    link.symlink_to(link if kind == "loop" else tmp_path / "gone")
    monkeypatch.setattr(prepare_build, "_write_subjects", pytest.fail)
    assert main(prepare_argv(root, ann, link, "--subject", "01")) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"--cache {link} is a symbolic link that leads nowhere" in err, err
    assert "Traceback" not in err and link.is_symlink() and partials(tmp_path) == []


def test_cache_as_a_symlink_to_a_folder_is_built_there(tiny_dataset, tmp_path: Path) -> None:
    root, ann = tiny_dataset
    (tmp_path / "real").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "real")
    prepare_cache(root, ann, tmp_path / "cache", subjects=["01"])
    assert (tmp_path / "cache").is_symlink() and open_cache(tmp_path / "real").subjects == ["01"]


def test_prepare_into_a_read_only_folder_says_which_and_how(
    tiny_dataset, tmp_path: Path, capsys
) -> None:
    root, ann = tiny_dataset
    parent = tmp_path / "shared"
    parent.mkdir()
    with read_only(parent):
        code = main(prepare_argv(root, ann, parent / "cache", "--subject", "01"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"cannot prepare the cache at {parent / 'cache'}: " in err and "Permission denied" in err
    assert f"make {parent} accessible to you" in err and "another --cache" in err
    assert list(parent.iterdir()) == []


def test_relabel_of_a_read_only_cache_keeps_it(tiny_dataset, tmp_path: Path, capsys) -> None:
    root, ann = tiny_dataset
    cache_dir = tmp_path / "cache"
    prepare_cache(root, ann, cache_dir, subjects=["01"])
    before = checksums(cache_dir)
    with read_only(cache_dir):
        code = main(prepare_argv(root, ann, cache_dir, "--subject", "01", "--lag", "0"))
    err = capsys.readouterr().err
    assert (
        code == EXIT_CODES["data"]
        and "Permission denied" in err
        and f"make {cache_dir} accessible" in err
    )
    assert checksums(cache_dir) == before


def test_an_unreadable_dataset_folder_is_named(tiny_dataset, tmp_path: Path, capsys) -> None:
    root, ann = tiny_dataset
    func = (root / bold_filename("02", 1)).parent
    with read_only(func, mode=0o000):
        code = main(prepare_argv(root, ann, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"cannot read {func} (permission denied)" in err and "chmod -R u+rX" in err
    assert not (tmp_path / "cache").exists()


# -- damaged manifests (item 8) -----------------------------------------------------------------
@pytest.fixture
def cache_copy(tiny_cache, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_cache.path, tmp_path / "cache"))


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_manifest_is_named_by_train(cache_copy: Path, tmp_path: Path, capsys, how: str):
    path = damage(cache_copy, how)
    before = checksums(cache_copy)
    with pytest.raises(CacheError, match=re.escape(f"{path} is damaged: {SAID[how]}")):
        open_cache(cache_copy)
    registry = tmp_path / "registry"
    argv = ["train", "--cache", str(cache_copy), "--registry", str(registry), "--device", "cpu"]
    assert main(argv) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"{path} is damaged: {SAID[how]}" in err and "--force" in err and "Traceback" not in err
    assert Registry(registry).list_runs().empty and checksums(cache_copy) == before


@pytest.mark.parametrize("how", ["binary", "no subjects"])
def test_prepare_over_a_damaged_manifest_drops_nobody_without_force(
    tiny_cache, cache_copy: Path, how: str
) -> None:
    cohort = tiny_cache.path.parent / "cohort"
    ann = cohort / "annotations" / "raw"
    path = damage(cache_copy, how)
    before = checksums(cache_copy)
    with pytest.raises(CacheError, match=rf"{path} is damaged") as info:
        prepare(cohort, ann, cache_copy, subjects=["01"])
    assert "sub-01.npy, sub-02.npy" in str(info.value) and "--force" in str(info.value)
    assert checksums(cache_copy) == before


def test_prepare_force_rebuilds_over_a_damaged_manifest(tiny_cache, cache_copy: Path) -> None:
    cohort = tiny_cache.path.parent / "cohort"
    damage(cache_copy, "binary")
    result = prepare(cohort, cohort / "annotations" / "raw", cache_copy, force=True)
    assert result.action == "built" and open_cache(cache_copy).subjects == ["01", "02"]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("mask.npy", b"garbage", "mask.npy is missing or damaged"),
        ("labels.tsv", b"", "labels.tsv is missing or damaged"),
        ("labels.tsv", None, "labels.tsv is missing or damaged"),
    ],
    ids=["mask garbage", "labels empty", "labels missing"],
)
def test_damaged_cache_files_are_named(cache_copy: Path, name: str, data, said: str) -> None:
    path = cache_copy / name
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    cache = open_cache(cache_copy)
    with pytest.raises(CacheError, match=re.escape(said)) as info:
        getattr(cache, "mask" if name == "mask.npy" else "labels")
    assert f"--cache {cache_copy} --force" in str(info.value)


def test_rebuild_refuses_a_cache_folder_holding_other_files(
    tiny_cache, cache_copy: Path, capsys
) -> None:
    cohort = tiny_cache.path.parent / "cohort"
    Registry(cache_copy).create_run(kind="train")  # a registry kept inside the cache folder
    (cache_copy / "notes.txt").write_text("mine")
    before = checksums(cache_copy)
    code = main(prepare_argv(cohort, cohort / "annotations" / "raw", cache_copy, "--force"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"the cache folder {cache_copy} also holds notes.txt, registry.sqlite" in err
    assert "would delete them" in err and checksums(cache_copy) == before


# -- a real full disk ---------------------------------------------------------------------------
def test_relabel_on_a_full_disk_keeps_the_old_labels(tiny_cache, tmp_path: Path, capsys) -> None:
    from tests.faults.conftest import fill, mounted_tmpfs

    cohort = tiny_cache.path.parent / "cohort"
    ann = cohort / "annotations" / "raw"
    with mounted_tmpfs(tmp_path / "disk", "24m") as disk:
        cache_dir = Path(shutil.copytree(tiny_cache.path, disk / "cache"))
        before = checksums(cache_dir)
        fill(disk)
        code = main(prepare_argv(cohort, ann, cache_dir, "--lag", "0"))
        err = capsys.readouterr().err
        assert code == EXIT_CODES["data"], err
        assert f"cannot prepare the cache at {cache_dir}: " in err and "No space left" in err
        assert "the disk (or your quota) is full (0.0 MiB free)" in err
        assert checksums(cache_dir) == before  # labels.tsv and manifest.json as they were


def test_a_build_on_a_too_small_disk_is_refused_before_writing(tiny_cache, tmp_path: Path) -> None:
    from tests.faults.conftest import mounted_tmpfs

    cohort = tiny_cache.path.parent / "cohort"
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        with pytest.raises(CacheError, match=r"its arrays need .* but .* has 1\.0 MiB free"):
            prepare(cohort, cohort / "annotations" / "raw", disk / "cache")
        assert list(disk.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "said"),
    [({"note": "bench"}, "options prepare does not know (note)"), ({"lag_s": "four"}, "'four'")],
)
def test_cache_options_prepare_cannot_use_are_a_cache_error(options, said: str) -> None:
    with pytest.raises(CacheError, match=re.escape(said)):
        PrepareOptions.from_manifest(options)
