"""Write a whole cohort: :func:`generate_cohort` (into a hidden folder renamed into place) and
:func:`planted_subjects` (who was planted as atypical in one)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emocore import __version__
from emocore._io import current_umask
from emocore.constants import DERIVATIVE_DIR, EMOTIONS, RUN_N_VOLUMES
from emocore.data.synthetic.config import (
    ADDED_OPTIONS,
    FORMAT,
    FOV_LOW_MM,
    OtherCohortError,
    SynthConfig,
    grid_for,
    random_stream,
)
from emocore.data.synthetic.layouts import bold_template, confound_regions, save_nifti, write_run
from emocore.data.synthetic.movie import (
    SOUND_BY_EMOTION,
    draw_episodes,
    emotion_regressors,
    observer_table,
    scene_table,
    shared_envelope,
    volume_times,
)
from emocore.data.synthetic.signal import (
    AUDITORY_CENTRES,
    CENTRES,
    NETWORK_CENTRES,
    NETWORK_WEIGHT,
    motion_maps,
    motion_traces,
    pattern,
    run_bold,
    shared_map,
    subject_patterns,
    subject_shared_map,
    template_baseline,
)
from emocore.errors import DataError
from emocore.progress import Progress

logger = logging.getLogger(__name__)


def generate_cohort(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic cohort to ``out_dir`` (see the package docstring) and return its path.

    If ``out_dir`` already holds a cohort made with the same config, it is returned untouched.
    A cohort with another config raises :class:`DataError` unless ``overwrite`` is set; a folder
    with other files always does (it is never deleted).
    The cohort is written to a hidden sibling folder and renamed into place when complete, so a
    killed run leaves no half cohort and ``overwrite`` keeps the old one until then.
    ``progress(fraction, message)`` is called after each step.
    """
    cfg = config or SynthConfig()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        try:
            old = json.loads((out / "ground_truth" / "cohort.json").read_text())
            config = old.get("config")  # older cohorts lack the options added since
            same = (
                old.get("format") == FORMAT
                and isinstance(config, dict)
                and {**ADDED_OPTIONS, **config} == cfg.to_dict()
            )
        except (OSError, AttributeError, json.JSONDecodeError):
            old, same = None, False
        if same:
            logger.info("%s already holds a cohort with this config; nothing to do", out)
            return out
        if old is None or not overwrite:  # never delete a folder that is not a cohort
            what = "a cohort made with another config" if old else "other files"
            fix = "pass --overwrite (overwrite=True) to replace it, or " if old else ""
            error = OtherCohortError if old else DataError
            raise error(f"{out} already holds {what}; {fix}choose another --out folder")
        foreign = _not_written_by_synth(out)
        if foreign:  # a cache or an fMRIPrep run kept in the cohort would go with it
            raise DataError(
                f"{out} also holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, "
                "which the generator did not write; --overwrite replaces the whole folder and "
                "would delete them. Move them out first, or choose another --out folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    work.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would become the cohort's mode
    try:
        _write(work, cfg, progress)
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        if out.exists():  # swap in the complete new cohort, then delete the old one
            out.rename(trash / "old")
        work.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info(
        "wrote a synthetic cohort of %d people to %s (%s layout)", cfg.n_subjects, out, cfg.layout
    )
    return out


#: What a cohort holds at its top (besides sub-XX folders), and below derivatives/.
_COHORT_ENTRIES = frozenset({"annotations", "ground_truth", "dataset_description.json", "README"})


def _not_written_by_synth(out: Path) -> list[str]:
    """Entries of the cohort folder ``out`` that the generator does not write (hidden ones
    aside): what an --overwrite would delete along with the cohort."""
    derivative_top, _, derivative_name = DERIVATIVE_DIR.partition("/")
    found = []
    for p in sorted(out.iterdir()):
        if p.name.startswith(".") or p.name in _COHORT_ENTRIES or p.name.startswith("sub-"):
            continue
        if p.name == derivative_top and p.is_dir():
            found += [
                f"{p.name}/{q.name}"
                for q in sorted(p.iterdir())
                if q.name != derivative_name and not q.name.startswith(".")
            ]
            continue
        found.append(p.name)
    return found


@dataclass(frozen=True)
class _Brain:
    """The cohort's grid and template brain, the same for every person."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    baseline: np.ndarray
    mask: np.ndarray
    world: np.ndarray  # MNI mm of each voxel


def _brain(grid_mm: float) -> _Brain:
    shape, affine = grid_for(grid_mm)
    baseline, mask = template_baseline(shape, affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = (ijk @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)  # MNI mm of each voxel
    return _Brain(shape, affine, baseline, mask, world)


def _write(root: Path, cfg: SynthConfig, progress: Progress | None) -> None:
    """Write the cohort into the empty folder ``root``: the annotations and the ground truth,
    each person's runs, and ``ground_truth/cohort.json`` last."""
    total = 1 + cfg.n_subjects * len(RUN_N_VOLUMES)
    brain = _brain(cfg.grid_mm)
    # motion is resolved (never None) once the config exists, and at least 0
    maps = motion_maps(brain.baseline, brain.mask, brain.world, cfg.grid_mm) if cfg.motion else None
    regions = confound_regions(brain.baseline, brain.mask)
    rng = random_stream(cfg, 0, 0)
    episodes = draw_episodes(rng)
    regressors = emotion_regressors(episodes)
    timeline = shared_envelope(cfg, regressors) if cfg.shared > 0 else None
    _write_annotations(root / "annotations", rng, episodes)
    _write_ground_truth(root / "ground_truth", brain, episodes, timeline)
    if progress is not None:
        progress(1 / total, "annotations and ground truth")
    people = _write_people(root, cfg, brain, regressors, timeline, (maps, regions), progress)
    _write_descriptions(root, cfg, brain, episodes, timeline, people)


def _write_annotations(folder: Path, rng: np.random.Generator, episodes: pd.DataFrame) -> None:
    """The twelve observers' raw tables (``raw/``) and the scene list, drawn from ``rng``."""
    raw = folder / "raw"
    raw.mkdir(parents=True)
    observers = [f"av1o{i:02d}" for i in range(1, 10)] + [f"ao1o{i:02d}" for i in range(1, 4)]
    for name in observers:
        table = observer_table(rng, episodes, audio_only=name.startswith("ao"))
        table.to_csv(raw / f"{name}.csv", index=False)
    scene_table(rng).to_csv(folder / "movie_scenes.csv", index=False, header=False)


def _write_ground_truth(
    gt: Path, brain: _Brain, episodes: pd.DataFrame, timeline: dict[str, np.ndarray] | None
) -> None:
    """The cohort's own ground truth: each emotion's pattern, the brain mask, the episodes and
    (with a shared response) its map and time course."""
    world, mask, affine = brain.world, brain.mask, brain.affine
    for e in EMOTIONS:
        cohort_pattern = pattern(world, mask, np.asarray(CENTRES[e], float))
        save_nifti(cohort_pattern, affine, gt / "patterns" / f"{e}.nii.gz")
    save_nifti(mask.astype(np.uint8), affine, gt / "brain_mask.nii.gz")
    episodes.to_csv(gt / "episodes.tsv", sep="\t", index=False)
    if timeline is not None:
        save_nifti(shared_map(world, mask, np.zeros(3)), affine, gt / "shared" / "map.nii.gz")
        bounds = np.cumsum([0, *RUN_N_VOLUMES])
        run = np.repeat(np.arange(1, len(RUN_N_VOLUMES) + 1), RUN_N_VOLUMES)
        volume = np.arange(bounds[-1]) - bounds[:-1][run - 1]
        table = {"run": run, "volume": volume, "movie_time_s": volume_times()}
        table |= {k: np.round(v, 6) for k, v in timeline.items()}
        pd.DataFrame(table).to_csv(gt / "shared" / "envelope.tsv", sep="\t", index=False)


def _write_people(
    root: Path,
    cfg: SynthConfig,
    brain: _Brain,
    regressors: np.ndarray,
    timeline: dict[str, np.ndarray] | None,
    motion: tuple[np.ndarray | None, dict[str, np.ndarray]],
    progress: Progress | None,
) -> dict[str, Any]:
    """Every person's patterns (and shared map) and runs; return what cohort.json says of them.
    ``motion`` is the motion maps (None without motion) and the confound regions."""
    total = 1 + cfg.n_subjects * len(RUN_N_VOLUMES)
    maps, regions = motion
    bounds = np.cumsum([0, *RUN_N_VOLUMES])
    people, jobs, done = {}, [], 1
    with ThreadPoolExecutor(max_workers=1) as pool:  # gzip one run while the next is computed
        for si, subject in enumerate(cfg.subjects, start=1):
            stack, smap, people[subject] = _write_person_truth(root, cfg, brain, si, timeline)
            for k in range(len(RUN_N_VOLUMES)):
                regs = regressors[:, bounds[k] : bounds[k + 1]]
                # Own stream, so the motion traces change nothing else (motion=0: as before).
                traces = motion_traces(random_stream(cfg, si, 101 + k), regs.shape[1])
                moves = None if maps is None else (maps, traces)
                shared = None
                if timeline is not None and smap is not None:
                    shared = (smap, timeline["envelope"][bounds[k] : bounds[k + 1]])
                rng = random_stream(cfg, si, k + 1)
                data = run_bold(rng, cfg, brain.baseline, stack, regs, moves, shared)
                extra = (brain.mask, regions, traces)
                name = bold_template(cfg.layout).format(s=subject, run=k + 1).split("/")[-1]
                job = pool.submit(write_run, root, cfg, subject, k + 1, data, brain.affine, extra)
                jobs.append((job, name))
                del data  # two runs in memory: one being written (raw: and its acq-raw copy),
                # one computed
                last = si == cfg.n_subjects and k == len(RUN_N_VOLUMES) - 1
                while len(jobs) > (0 if last else 1):
                    future, name = jobs.pop(0)
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done / total, name)
    return people


def _write_person_truth(
    root: Path,
    cfg: SynthConfig,
    brain: _Brain,
    si: int,
    timeline: dict[str, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Person ``si``'s patterns (and map of the shared response) in ``ground_truth/``; return the
    patterns stacked in EMOTIONS order, the map (None without a shared response) and what
    cohort.json says of them."""
    gt = root / "ground_truth"
    subject = cfg.subjects[si - 1]
    atypical = subject in cfg.atypical_subjects
    pats, info = subject_patterns(cfg, brain.world, brain.mask, si, atypical)
    for e, p in pats.items():
        save_nifti(p, brain.affine, gt / "patterns" / f"sub-{subject}_{e}.nii.gz")
    person: dict[str, Any] = {"atypical": atypical, "patterns": info}
    smap = None
    if timeline is not None:
        smap, person["shared"] = subject_shared_map(cfg, brain.world, brain.mask, si)
        save_nifti(smap, brain.affine, gt / "shared" / f"sub-{subject}_map.nii.gz")
    return np.stack([pats[e] for e in EMOTIONS]), smap, person


def _write_descriptions(
    root: Path,
    cfg: SynthConfig,
    brain: _Brain,
    episodes: pd.DataFrame,
    timeline: dict[str, np.ndarray] | None,
    people: dict[str, Any],
) -> None:
    """``dataset_description.json``, ``README`` and, last, ``ground_truth/cohort.json``."""
    meta = {
        "format": FORMAT,
        "generated_by": f"emocore {__version__}",
        "config": cfg.to_dict(),
        "grid": {
            "shape": list(brain.shape),
            "affine": brain.affine.tolist(),
            "fov_low_mm": FOV_LOW_MM,
        },
        "units": "patterns peak at 1 (times gain); bold % change = signal * amplitude * pattern"
        " + shared * shared map * envelope",
        "shared_response": _shared_meta(cfg, timeline),
        "atypical": cfg.atypical_subjects,
        "subjects": people,
        "n_episodes": len(episodes),
        "layout": cfg.layout,
        "bold_file": bold_template(cfg.layout),
    }
    description = {
        "Name": "emocore synthetic studyforrest-like cohort (no real person)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "emocore_synthetic_config": cfg.to_dict(),
        "GeneratedBy": [{"Name": "emocore", "Version": __version__, "Description": "synthetic"}],
    }
    where = "OpenNeuro\nds000113 (studyforrest)"
    if cfg.layout == "fmriprep":
        description["Name"] = "emocore synthetic studyforrest-like cohort, fMRIPrep layout"
        description["DatasetType"] = "derivative"
        description["GeneratedBy"][0]["Description"] = (  # type: ignore[index]
            "synthetic; named and shaped like fMRIPrep's outputs, not made by fMRIPrep"
        )
        where = "an fMRIPrep\nderivative of ds000113 (studyforrest)"
    (root / "dataset_description.json").write_text(json.dumps(description, indent=1))
    (root / "README").write_text(
        f"Synthetic fMRI cohort written by emocore (`emocore synth`) in the layout of {where}. "
        "No real person was scanned. The true emotion episodes and\n"
        "patterns are in ground_truth/; the observer annotations in annotations/.\n"
    )
    (root / "ground_truth" / "cohort.json").write_text(json.dumps(meta, indent=1))  # written last


def _shared_meta(cfg: SynthConfig, timeline: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """What cohort.json says about the shared response (its files, its make-up)."""
    if timeline is None:
        return {"strength_pct": 0.0, "note": "no shared response (shared = 0)"}
    return {
        "strength_pct": cfg.shared,
        "emotion_share": cfg.shared_emotion if cfg.signal > 0 else 0.0,
        "map": "ground_truth/shared/map.nii.gz (each person's: sub-XX_map.nii.gz)",
        "envelope": "ground_truth/shared/envelope.tsv (column envelope: mean 0, sd 1)",
        "auditory_centres_mm": [list(c) for c in AUDITORY_CENTRES],
        "network_centres_mm": [list(c) for c in NETWORK_CENTRES],
        "network_weight": NETWORK_WEIGHT,
        "sound_by_emotion": SOUND_BY_EMOTION,
        "envelope_vs_emotion_mix_r": round(
            float(np.corrcoef(timeline["envelope"], timeline["mix"])[0, 1]), 3
        ),
    }


def planted_subjects(root: str | Path) -> list[str] | None:
    """The people planted as atypical in the synthetic cohort at ``root`` (``[]`` when none was),
    or None when ``root`` is not a synthetic cohort (no readable ``ground_truth/cohort.json``)."""
    try:
        info = json.loads((Path(root) / "ground_truth" / "cohort.json").read_text())
    except (OSError, ValueError):
        return None
    planted = info.get("atypical", info.get("config", {}).get("atypical"))
    return [str(s) for s in planted] if isinstance(planted, list) else None
