"""Find and check the BOLD runs of a studyforrest-like dataset.

Three layouts are understood. The ds000113 aligned derivative is tried first, then the folder
itself as BIDS (raw data or an fMRIPrep derivative):

1. the ds000113 derivative the poster used, ``derivatives/non-linear_anatomical_alignment/
   sub-XX/ses-forrestgump/func/*_rec-dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz``;
2. raw BIDS such as OpenNeuro ds000113, ``sub-XX/[ses-*/]func/*_bold.nii[.gz]``, where every
   run exists twice (``acq-dico``, distortion-corrected, and ``acq-raw``): choose with ``acq``;
3. an fMRIPrep derivative folder, ``sub-XX/[ses-*/]func/*_space-<space>_desc-preproc_bold.nii.gz``
   next to ``*_desc-confounds_timeseries.tsv``: choose among spaces with ``space``.

Files are listed with nilearn's BIDS helpers (:func:`nilearn.interfaces.bids.get_bids_files`,
:func:`~nilearn.interfaces.bids.parse_bids_filename`). The entity options (``task``, ``acq``,
``space``, ``desc``) filter the files; a layout none of whose files pass the filters is passed
over (so ``acq='dico'`` reads the raw runs of a dataset that also holds the aligned derivative).
When one run of one person is still found more than once, the error lists the entities that tell
the copies apart and the option that chooses among them.

Every run's header must give the labels' TR (2 s) and the movie run's volume count; a
symbolic link below the folder that leads outside it is refused (nothing outside the folder
given is read, as the dashboard promises for its data root).

Only headers are read here (nibabel loads them lazily), so discovering a 20-person dataset takes
well under a second. The voxel data are read, and checked for truncation and non-finite values,
when the cache is built.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np

from emocore.constants import DERIVATIVE_DIR, N_RUNS, RUN_N_VOLUMES, TR_S
from emocore.errors import DataError, listed

__all__ = ["BoldRun", "SubjectRuns", "Dataset", "discover_dataset", "ENTITY_OPTIONS"]

logger = logging.getLogger(__name__)

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")

#: The BIDS entities a user can choose with an option, and that option's name on the CLI.
ENTITY_OPTIONS: dict[str, str] = {
    "task": "--task",
    "acq": "--acq",
    "space": "--space",
    "desc": "--desc",
}
# Entities that tell the copies of one run apart but have no option: what to say instead.
_NO_OPTION = {
    "res": "give the resolution with the space, e.g. --space MNI152NLin2009cAsym:res-2",
    "ses": "keep one session's runs below the folder (ds000113's 7-T audio movie is ses-forrestgump)",
}


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
    entities: Mapping[str, str] = field(default_factory=dict, compare=False)

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
    layout: str  # "ds000113-derivative", "bids" or "fmriprep"
    subjects: tuple[SubjectRuns, ...]
    warnings: tuple[str, ...] = ()
    #: The folder the runs were found in (``root``, or the aligned derivative below it).
    base: Path | None = None
    #: Entity values the runs share (task, acq, space, desc, ...): what was read.
    entities: Mapping[str, str] = field(default_factory=dict)

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


# -- finding files -------------------------------------------------------------------------------
def _check_readable(root: Path) -> None:
    """Refuse a dataset with folders that cannot be listed (the file search would skip them
    silently and report fewer runs, or none: "no BOLD runs found"), or with symbolic links that
    lead outside it (see :func:`_outside`)."""
    walk = _Walk(top=_resolved(root))
    for base in (root, root / DERIVATIVE_DIR):
        if walk.denied:  # the top folder itself: nothing below can be looked at
            break
        if base != root and any(  # derivatives/ or the aligned folder below it, as a link
            _outside(part, walk.top, walk.outside)
            for part in (root / DERIVATIVE_DIR.split("/")[0], base)
            if part.is_symlink()
        ):
            continue
        try:
            present = base == root or base.is_dir()
        except PermissionError:
            walk.denied.append(base.parent)
            continue
        if present:
            walk.folder(base, True)
    if walk.outside:
        link, target = walk.outside[0]
        n = len(walk.outside)
        more = f" (and {n - 1} more such link(s))" if n > 1 else ""
        raise DataError(
            f"{link} is a symbolic link to {target}, outside the dataset folder {root}{more}; "
            "emocore reads nothing outside the folder it is given (the dashboard promises its "
            "data root). Put the data below the folder (replace the link by a copy of what it "
            "leads to, e.g. `cp -rL`), or give the folder that holds the data itself"
        )
    if walk.denied:
        shown = ", ".join(str(p) for p in dict.fromkeys(walk.denied[:5]))
        more = f" and {len(walk.denied) - 5} more" if len(walk.denied) > 5 else ""
        raise DataError(
            f"cannot read {shown}{more} (permission denied), so runs below would be missed; make "
            f"the dataset readable (e.g. chmod -R u+rX {root}) or point --bids at a copy you can read"
        )


@dataclass
class _Walk:
    """A walk through the dataset's folders below ``top`` (resolved), and what it found: folders
    it could not list (``denied``) and links that lead outside ``top`` (``outside``)."""

    top: Path
    denied: list[Path] = field(default_factory=list)
    outside: list[tuple[Path, Path]] = field(default_factory=list)  # (link, where it leads)
    # Each folder is listed once, by its (device, inode): links to folders inside the dataset
    # are followed (the file search follows them too), but a link back up the tree (`ln -s .
    # func/loop`, `ln -s ../func func/loop2`) would otherwise make the walk go round, and
    # several such links make it exponential: a hang.
    seen: set[tuple[int, int]] = field(default_factory=set)

    def folder(self, folder: Path, people_only: bool) -> None:
        """Walk ``folder`` and the folders below it (only its ``sub-*`` ones if ``people_only``)."""
        try:
            info = folder.stat()
        except OSError:  # scandir says why, just below
            pass
        else:
            if (info.st_dev, info.st_ino) in self.seen:
                return
            self.seen.add((info.st_dev, info.st_ino))
        try:
            entries = list(os.scandir(folder))
        except PermissionError:
            self.denied.append(folder)
            return
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or (people_only and not entry.name.startswith("sub-")):
                continue
            try:
                if entry.is_symlink() and _outside(Path(entry.path), self.top, self.outside):
                    continue
                if entry.is_dir():
                    self.folder(Path(entry.path), False)
            except OSError:
                continue


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop: the folder itself, as given
        return path.absolute()


def _outside(link: Path, top: Path, found: list[tuple[Path, Path]]) -> bool:
    """Whether the symbolic link ``link`` leads outside the folder ``top`` (resolved); if so it
    is added to ``found``. A link that leads nowhere (dangling, a loop) is not outside."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    if target == top or target.is_relative_to(top):
        return False
    found.append((link, target))
    return True


def _is_fmriprep(folder: Path, files: list[dict]) -> bool:
    try:
        description = json.loads((folder / "dataset_description.json").read_text())
        makers = [str(g.get("Name", "")) for g in description.get("GeneratedBy", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        makers = []
    if any("fmriprep" in m.lower() for m in makers):
        return True
    return any(f["entities"].get("desc") == "preproc" and "space" in f["entities"] for f in files)


def _bold_files(folder: Path) -> list[dict]:
    """Every ``*_bold.nii[.gz]`` in a func folder below ``folder``, parsed into BIDS entities."""
    # here: nilearn takes about a second to import, and the GPU machine has none
    from nilearn.interfaces.bids import get_bids_files, parse_bids_filename

    paths = get_bids_files(folder, file_tag="bold", file_type="nii*", modality_folder="func")
    out = []
    for p in paths:
        if not p.endswith((".nii", ".nii.gz")):
            continue
        parsed = parse_bids_filename(p)
        entities = dict(parsed["entities"])
        sub_dir = next((q for q in Path(p).parents if q.name.startswith("sub-")), None)
        if "sub" not in entities and sub_dir is not None:
            entities["sub"] = sub_dir.name.removeprefix("sub-")
        out.append({"path": Path(p), "entities": entities, "folder": sub_dir})
    return out


def _check_subject_label(f: dict) -> None:
    """Refuse a person whose label (in the sub-XX folder's name or the file's) is not a BIDS
    label: letters and digits only. The label becomes part of file names, run folders and the
    HTML of reports; anything else (a '.', a '_', spaces, '<', quotes) is refused here, with
    the folder named, rather than carried along."""
    folder = f.get("folder")
    labels = [f["entities"]["sub"]] + ([folder.name.removeprefix("sub-")] if folder else [])
    bad = next((label for label in labels if not _LABEL_RE.match(label)), None)
    if bad is not None:
        raise DataError(
            f"{folder or f['path']}: the subject label {bad!r} is not a BIDS label (letters and "
            "digits only, e.g. sub-01 or sub-pilot2); rename the folder and its files to "
            "sub-<letters and digits>, or move it out of the dataset"
        )


def _wanted(space: str | None) -> dict[str, str]:
    """``space`` as entity filters: 'MNI152NLin2009cAsym:res-2' means space and res."""
    if space is None:
        return {}
    name, _, res = space.partition(":")
    out = {"space": name}
    if res:
        out["res"] = res.removeprefix("res-")
    return out


def _select(files: list[dict], wanted: Mapping[str, str]) -> list[dict]:
    return [f for f in files if all(f["entities"].get(k) == v for k, v in wanted.items())]


def _found_values(files: list[dict], entity: str) -> str:
    values = sorted({f["entities"].get(entity, "(none)") for f in files})
    return ", ".join(values)


def _find_files(root: Path, wanted: Mapping[str, str]) -> tuple[str, Path, list[dict], list[dict]]:
    """(layout, folder, the files that pass ``wanted``, every BOLD file of that folder)."""
    sets: list[tuple[str, Path, list[dict]]] = []
    deriv = root / DERIVATIVE_DIR
    if deriv.is_dir():
        sets.append(("ds000113-derivative", deriv, _bold_files(deriv)))
    files = _bold_files(root)
    sets.append(("fmriprep" if _is_fmriprep(root, files) else "bids", root, files))
    for layout, folder, found in sets:
        chosen = _select(found, wanted)
        if chosen:
            return layout, folder, chosen, found
    every = [f for _, _, found in sets for f in found]
    if not every:
        raise DataError(
            f"no BOLD runs found below {root}: expected {DERIVATIVE_DIR}/sub-XX/ses-forrestgump/func/"
            "*_run-0N_bold.nii.gz (the aligned derivative), sub-XX/[ses-*/]func/*_bold.nii.gz "
            "(raw BIDS) or an fMRIPrep folder (*_space-*_desc-preproc_bold.nii.gz). "
            "Make a demo cohort with `emocore synth --out DIR` to see the layout"
        )
    found_text = "; ".join(f"{entity}: {_found_values(every, entity)}" for entity in wanted)
    asked = ", ".join(f"{k}-{v}" for k, v in wanted.items())
    raise DataError(
        f"no BOLD runs below {root} have {asked}; the {len(every)} BOLD files there have "
        f"{found_text}. Choose one of those values (or leave the option out)"
    )


def _copies_message(root: Path, subject: str, run: int, copies: list[dict]) -> str:
    """Why one run of one person was found more than once, and how to choose."""
    keys = sorted({k for f in copies for k in f["entities"]} - {"sub", "run"})
    differ = [k for k in keys if len({f["entities"].get(k) for f in copies}) > 1]
    names = ", ".join(f["path"].name for f in copies)
    if not differ:  # same entities: .nii next to .nii.gz, or a copy in another folder
        return (
            f"sub-{subject} run {run} is found {len(copies)} times below {root} ({names}); "
            "keep one file per run"
        )
    hints = []
    for k in differ:
        values = _found_values(copies, k)
        if k in ENTITY_OPTIONS:
            hint = f"choose one with {ENTITY_OPTIONS[k]}"
            if k == "acq":
                hint += " (ds000113: 'dico' is the distortion-corrected run)"
            if k == "task":
                hint += " (studyforrest's audio movie is 'forrestgump')"
        else:
            hint = _NO_OPTION.get(k, "keep one of them below the folder (move the others)")
        hints.append(f"they differ in {k} ({values}): {hint}")
    return (
        f"sub-{subject} run {run} has {len(copies)} BOLD files below {root} ({names}); "
        + "; ".join(hints)
    )


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


def _read_header(
    path: Path, subject: str, run: int, entities: Mapping[str, str] | None = None
) -> BoldRun:
    try:
        img = cast(nib.Nifti1Image, nib.load(path))  # load() is typed FileBasedImage
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
        entities=dict(entities or {}),
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
    folder = runs[0].path.parent if runs else Path(f"sub-{subject}")
    if missing or extra:  # copies of one run were refused by discover_dataset already
        parts = []
        if missing:
            parts.append(f"missing run(s) {', '.join(map(str, missing))}")
        if extra:
            parts.append(f"unexpected run(s) {', '.join(map(str, extra))}")
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
        if not np.isclose(r.tr, TR_S, atol=1e-3):
            raise DataError(_tr_message(r))
        if expected_volumes is not None and r.n_volumes != expected_volumes[r.run - 1]:
            raise DataError(_length_message(r, expected_volumes[r.run - 1]))
    return warnings


def _tr_message(run: BoldRun) -> str:
    """Why a run whose header gives another TR than the labels' cannot be used."""
    factor = run.tr / TR_S
    hint = (
        f" ({factor:g} times {TR_S:g} s: a TR written in milliseconds while the header's time "
        "unit says seconds?)"
        if np.isclose(factor, 1000.0, rtol=1e-3)
        else ""
    )
    return (
        f"{run.path}: its header gives a repetition time (TR, pixdim[4]) of {run.tr:g} s"
        f"{hint}, but the labels are built for one volume every {TR_S:g} s, as studyforrest "
        f"was acquired, so every volume after the first would get another moment's label. If "
        f"the run was acquired at {TR_S:g} s, fix the header (nibabel: img.header.set_zooms("
        f"img.header.get_zooms()[:3] + ({TR_S!r},)) and set_xyzt_units(t='sec'), then save); "
        f"otherwise it is not a run of the studyforrest movie as acquired: replace it with one"
    )


def _volumes_on_disk(path: Path) -> int | None:
    """How many volumes the data in the file hold, from its size (a ``.nii``) or the gzip
    trailer's length (a ``.nii.gz`` whose data are surely under 4 GiB); None when unknown."""
    try:
        img = cast(nib.Nifti1Image, nib.load(path))
        header = img.header
        per_volume = int(np.prod(img.shape[:3])) * header.get_data_dtype().itemsize
        offset = int(header.get_data_offset())
        size = path.stat().st_size
        if path.name.endswith(".gz"):
            if size * 1032 >= 2**32:  # deflate packs at most ~1032:1; the trailer wraps at 4 GiB
                return None
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                size = int.from_bytes(fh.read(4), "little")
    except (OSError, ValueError, TypeError):
        return None
    return max(size - offset, 0) // per_volume if per_volume else None


def _length_message(run: BoldRun, expected: int) -> str:
    """What is wrong when a run's header gives another volume count than the movie's run."""
    on_disk = _volumes_on_disk(run.path)
    data = (
        f"; the data in the file hold {on_disk}"
        if on_disk is not None and on_disk != run.n_volumes
        else ""
    )
    if run.n_volumes > expected:
        return (
            f"{run.path}: its header says it holds {run.n_volumes} volumes (dim[4]), but "
            f"studyforrest run {run.run} has {expected}{data}. The header is wrong, or the file "
            f"is not run {run.run} of the movie: fix dim[4] in the header (nibabel) or re-export "
            "the run"
        )
    return (
        f"{run.path} has {run.n_volumes} volumes; studyforrest run {run.run} has {expected}"
        f"{data}. The run is cut short (an interrupted download or export?): re-download or "
        "re-export it"
    )


def discover_dataset(
    root: str | Path,
    *,
    task: str | None = None,
    acq: str | None = None,
    space: str | None = None,
    desc: str | None = None,
    subjects: Sequence[str] | None = None,
    expected_runs: Sequence[int] = tuple(range(1, N_RUNS + 1)),
    expected_volumes: Sequence[int] | None = RUN_N_VOLUMES,
) -> Dataset:
    """Find every subject's BOLD runs below ``root`` and check that they fit together.

    Parameters
    ----------
    root
        The dataset's top folder: the one holding ``derivatives/`` or ``sub-XX/``, or an fMRIPrep
        output folder.
    task, acq, space, desc
        Keep only files with these BIDS entities (``_task-<task>_``, ...). ``space`` may name a
        resolution too, as fMRIPrep does: ``MNI152NLin2009cAsym:res-2``. Needed when one run is
        found more than once (raw ds000113 holds ``acq-dico`` and ``acq-raw``; fMRIPrep one file
        per output space); the error then says which entity differs and what was found.
    subjects
        Labels without ``sub-`` to keep (default: all found).
    expected_runs, expected_volumes
        The run numbers each subject must have and their lengths (studyforrest by default;
        ``expected_volumes=None`` skips the length check).
    """
    root = Path(root)
    _check_is_folder(root)
    if subjects is not None:  # in the order given, each once: a repeat reads nobody twice
        subjects = _subject_labels(subjects)
    _check_readable(root)
    for name, value in (("task", task), ("acq", acq), ("desc", desc)):
        if value is not None and not _LABEL_RE.match(value):
            raise DataError(
                f"{ENTITY_OPTIONS[name]} must be a BIDS label (letters and digits only); "
                f"'{value}' was given"
            )
    wanted = {k: v for k, v in (("task", task), ("acq", acq), ("desc", desc)) if v is not None}
    wanted |= _wanted(space)
    layout, base, files, every = _find_files(root, wanted)
    if task is None:
        _check_one_task(base, files)
    by_subject = _read_runs(base, files, subjects)
    if subjects is not None:
        unknown = [s for s in subjects if s not in by_subject]
        if unknown:
            found = sorted({f["entities"]["sub"] for f in files if "sub" in f["entities"]})
            raise DataError(
                f"subject(s) {listed(unknown)} not found below {root}; it holds "
                f"{listed(found) or 'nobody'}"
            )
    warnings: list[str] = []
    result = []
    for subject in sorted(by_subject):
        runs = sorted(by_subject[subject], key=lambda r: r.run)
        warnings += _check_subject(subject, runs, list(expected_runs), expected_volumes)
        result.append(SubjectRuns(subject=subject, runs=tuple(runs)))
    return Dataset(
        root=root,
        layout=layout,
        subjects=tuple(result),
        warnings=tuple(warnings),
        base=base,
        entities=_shared_entities(result),
    )


def _check_is_folder(root: Path) -> None:
    try:
        is_dir = root.is_dir()
    except PermissionError:
        is_dir = True  # a folder above cannot be looked into: said by _check_readable
    if not is_dir:
        raise DataError(
            f"{root} is not a folder; give the dataset's top folder (holding sub-XX/ or derivatives/)"
        )


def _subject_labels(subjects: Sequence[str]) -> list[str]:
    """``subjects`` in the order given, each once; a DataError names any that is not a BIDS
    label (and says to leave out ``sub-`` where it was given)."""
    subjects = list(dict.fromkeys(subjects))
    bad = [s for s in subjects if not isinstance(s, str) or not _LABEL_RE.match(s)]
    if bad:
        prefixed = any(isinstance(s, str) and s.startswith("sub-") for s in bad)
        raise DataError(
            f"--subject {listed(repr(s) for s in bad)}: a subject is a BIDS label, letters "
            "and digits only"
            + ("; give it without 'sub-' (e.g. --subject 01)" if prefixed else " (e.g. 01)")
        )
    return subjects


def _check_one_task(base: Path, files: list[dict]) -> None:
    """Without --task, the BOLD runs found must all be of one task."""
    tasks = sorted({f["entities"]["task"] for f in files if "task" in f["entities"]})
    if len(tasks) > 1:
        raise DataError(
            f"{base} holds BOLD runs of several tasks ({', '.join(tasks)}); "
            "choose one with --task (studyforrest's audio movie is 'forrestgump')"
        )


def _read_runs(
    base: Path, files: list[dict], subjects: Sequence[str] | None
) -> dict[str, list[BoldRun]]:
    """The runs of ``files`` (of the people in ``subjects``, when given) by person, their headers
    read; files without a person or run number are skipped with a warning, and a run found more
    than once is a DataError (see :func:`_copies_message`)."""
    by_run: dict[tuple[str, int], list[dict]] = {}
    for f in files:
        entities = f["entities"]
        if "sub" not in entities or "run" not in entities or not entities["run"].isdigit():
            logger.warning(
                "skipping %s: no sub-XX folder or _run-NN_ entity in its name", f["path"]
            )
            continue
        if subjects is not None and entities["sub"] not in subjects:
            continue
        _check_subject_label(f)
        by_run.setdefault((entities["sub"], int(entities["run"])), []).append(f)
    for (subject, run), copies in sorted(by_run.items()):
        if len(copies) > 1:
            raise DataError(_copies_message(base, subject, run, copies))
    by_subject: dict[str, list[BoldRun]] = {}
    for (subject, run), (f,) in sorted(by_run.items()):
        by_subject.setdefault(subject, []).append(
            _read_header(f["path"], subject, run, f["entities"])
        )
    return by_subject


def _shared_entities(result: Sequence[SubjectRuns]) -> dict[str, str]:
    """The BIDS entities (but sub and run) that every run found has, with the same value."""
    return {
        k: v
        for k, v in (result[0].runs[0].entities.items() if result else ())
        if k not in ("sub", "run") and all(r.entities.get(k) == v for s in result for r in s.runs)
    }
