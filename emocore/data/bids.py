"""Find and check the BOLD runs of a studyforrest-like dataset.

Two layouts are understood, tried in this order:

1. the ds000113 derivative the poster used, ``derivatives/non-linear_anatomical_alignment/
   sub-XX/ses-forrestgump/func/*_rec-dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz``;
2. plain BIDS, ``sub-XX/[ses-*/]func/*_bold.nii.gz`` (filtered by ``task``).

Only headers are read here (nibabel loads them lazily), so discovering a 20-person dataset takes
well under a second. The voxel data are read, and checked for truncation and non-finite values,
when the cache is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from emocore.constants import DERIVATIVE_DIR, N_RUNS, RUN_N_VOLUMES, TR_S
from emocore.errors import DataError

__all__ = ["BoldRun", "SubjectRuns", "Dataset", "discover_dataset"]

logger = logging.getLogger(__name__)

_RUN_RE = re.compile(r"_run-(\d+)_")
_SUB_RE = re.compile(r"^sub-([A-Za-z0-9]+)$")
_TASK_RE = re.compile(r"_task-([A-Za-z0-9]+)_")


@dataclass(frozen=True)
class BoldRun:
    """One run's BOLD file and what its header says."""

    subject: str
    run: int
    path: Path
    shape: tuple[int, int, int]
    n_volumes: int
    affine: np.ndarray = field(repr=False, compare=False)
    tr: float

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]


@dataclass(frozen=True)
class SubjectRuns:
    """The runs of one person, in run order, checked to share one grid."""

    subject: str
    runs: tuple[BoldRun, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.runs[0].shape

    @property
    def affine(self) -> np.ndarray:
        return self.runs[0].affine


@dataclass(frozen=True)
class Dataset:
    """What :func:`discover_dataset` found below ``root``."""

    root: Path
    layout: str  # "ds000113-derivative" or "bids"
    subjects: tuple[SubjectRuns, ...]
    warnings: tuple[str, ...] = ()

    @property
    def subject_labels(self) -> list[str]:
        return [s.subject for s in self.subjects]

    def get(self, subject: str) -> SubjectRuns:
        for s in self.subjects:
            if s.subject == subject:
                return s
        raise DataError(
            f"subject '{subject}' is not in {self.root}; found: {', '.join(self.subject_labels)}"
        )


def _find_files(root: Path, task: str | None) -> tuple[str, list[Path]]:
    deriv = root / DERIVATIVE_DIR
    files = sorted(deriv.glob("sub-*/ses-*/func/*_run-*_bold.nii.gz")) if deriv.is_dir() else []
    if files:
        return "ds000113-derivative", files
    files = sorted(root.glob("sub-*/func/*_bold.nii.gz")) + sorted(
        root.glob("sub-*/ses-*/func/*_bold.nii.gz")
    )
    if task is not None:
        files = [f for f in files if f"_task-{task}_" in f.name]
    else:
        tasks = sorted({m.group(1) for f in files if (m := _TASK_RE.search(f.name))})
        if len(tasks) > 1:
            raise DataError(
                f"{root} holds BOLD runs of several tasks ({', '.join(tasks)}); "
                "choose one with --task (studyforrest's audio movie is 'forrestgump')"
            )
    return "bids", files


def _tr_from_header(img: nib.Nifti1Image, path: Path) -> float:
    zooms = img.header.get_zooms()
    tr = float(zooms[3]) if len(zooms) > 3 else 0.0
    units = img.header.get_xyzt_units()[1] if hasattr(img.header, "get_xyzt_units") else "sec"
    if units == "msec":
        tr /= 1000.0
    elif units == "usec":
        tr /= 1e6
    if tr <= 0:
        raise DataError(
            f"{path}: the header gives no repetition time (pixdim[4] = {zooms[3] if len(zooms) > 3 else 'missing'}); set it to 2.0 s, e.g. with nibabel's header.set_zooms"
        )
    return tr


def _read_header(path: Path, subject: str, run: int) -> BoldRun:
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise DataError(
            f"{path} cannot be read as NIfTI ({exc.__class__.__name__}: {exc}); "
            "re-download or re-export the file"
        ) from exc
    shape = tuple(int(v) for v in img.shape)
    if len(shape) != 4:
        raise DataError(
            f"{path} is {len(shape)}-D {shape}; expected 4-D BOLD (x, y, z, time). "
            "Point emocore at the functional runs, not an anatomical or mean image"
        )
    return BoldRun(
        subject=subject,
        run=run,
        path=path,
        shape=shape[:3],  # type: ignore[arg-type]
        n_volumes=shape[3],
        affine=np.asarray(img.affine, dtype=np.float64),
        tr=_tr_from_header(img, path),
    )


def _check_subject(
    subject: str,
    runs: list[BoldRun],
    expected_runs: Sequence[int],
    expected_volumes: Sequence[int] | None,
) -> list[str]:
    warnings: list[str] = []
    found = [r.run for r in runs]
    missing = sorted(set(expected_runs) - set(found))
    extra = sorted(set(found) - set(expected_runs))
    dupes = sorted({r for r in found if found.count(r) > 1})
    folder = runs[0].path.parent if runs else Path(f"sub-{subject}")
    if missing or extra or dupes:
        parts = []
        if missing:
            parts.append(f"missing run(s) {', '.join(map(str, missing))}")
        if extra:
            parts.append(f"unexpected run(s) {', '.join(map(str, extra))}")
        if dupes:
            parts.append(f"run(s) {', '.join(map(str, dupes))} found more than once")
        raise DataError(
            f"sub-{subject} in {folder}: {'; '.join(parts)}. studyforrest has runs "
            f"{expected_runs[0]}-{expected_runs[-1]}; restore the missing files or remove the extra ones"
        )
    ref = runs[0]
    for r in runs[1:]:
        if r.shape != ref.shape:
            raise DataError(
                f"{r.path} has grid {r.shape} but {ref.path.name} has {ref.shape}; all runs of "
                f"sub-{subject} must share one grid. Re-export the run or resample it to the others"
            )
        if not np.allclose(r.affine, ref.affine, atol=1e-3):
            raise DataError(
                f"{r.path} has a different affine (voxel-to-world mapping) from {ref.path.name}; "
                f"all runs of sub-{subject} must be aligned to the same space"
            )
    for r in runs:
        if expected_volumes is not None and r.n_volumes != expected_volumes[r.run - 1]:
            raise DataError(
                f"{r.path} has {r.n_volumes} volumes; studyforrest run {r.run} has "
                f"{expected_volumes[r.run - 1]}. The file may be cut short; re-download it"
            )
        if not np.isclose(r.tr, TR_S, atol=1e-3):
            msg = (
                f"{r.path}: header TR is {r.tr:g} s, not {TR_S:g} s; using the header's value. "
                "Check the file if the acquisition was at 2 s"
            )
            logger.warning(msg)
            warnings.append(msg)
    return warnings


def discover_dataset(
    root: str | Path,
    *,
    task: str | None = None,
    subjects: Sequence[str] | None = None,
    expected_runs: Sequence[int] = tuple(range(1, N_RUNS + 1)),
    expected_volumes: Sequence[int] | None = RUN_N_VOLUMES,
) -> Dataset:
    """Find every subject's BOLD runs below ``root`` and check that they fit together.

    Parameters
    ----------
    root
        The dataset's top folder (the one holding ``derivatives/`` or ``sub-XX/``).
    task
        For plain BIDS: keep only ``_task-<task>_`` files. Needed when several tasks are present.
    subjects
        Labels without ``sub-`` to keep (default: all found).
    expected_runs, expected_volumes
        The run numbers each subject must have and their lengths (studyforrest by default;
        ``expected_volumes=None`` skips the length check).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root} is not a folder; give the dataset's top folder (holding sub-XX/ or derivatives/)"
        )
    layout, files = _find_files(root, task)
    if not files:
        raise DataError(
            f"no BOLD runs found below {root}: expected {DERIVATIVE_DIR}/sub-XX/ses-forrestgump/func/"
            "*_run-0N_bold.nii.gz or sub-XX/[ses-*/]func/*_bold.nii.gz. "
            "Make a demo cohort with `emocore synth --out DIR` to see the layout"
        )
    by_subject: dict[str, list[BoldRun]] = {}
    for path in files:
        sub_dir = next((p for p in path.parents if _SUB_RE.match(p.name)), None)
        m = _RUN_RE.search(path.name)
        if sub_dir is None or m is None:
            logger.warning("skipping %s: no sub-XX folder or _run-NN_ entity in its name", path)
            continue
        subject = _SUB_RE.match(sub_dir.name).group(1)  # type: ignore[union-attr]
        if subjects is not None and subject not in subjects:
            continue
        by_subject.setdefault(subject, []).append(_read_header(path, subject, int(m.group(1))))
    if subjects is not None:
        unknown = sorted(set(subjects) - set(by_subject))
        if unknown:
            raise DataError(f"subject(s) {', '.join(unknown)} not found below {root}")
    warnings: list[str] = []
    result = []
    for subject in sorted(by_subject):
        runs = sorted(by_subject[subject], key=lambda r: r.run)
        warnings += _check_subject(subject, runs, list(expected_runs), expected_volumes)
        result.append(SubjectRuns(subject=subject, runs=tuple(runs)))
    return Dataset(root=root, layout=layout, subjects=tuple(result), warnings=tuple(warnings))
