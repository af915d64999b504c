"""The data commands: synth, prepare, demo and labels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emocore._io import check_writable

# Commands import the library inside their functions: `emocore --help` and a mistyped option
# answer without loading torch, nibabel or pandas.
from emocore.cli.common import (
    DEMO_DIR,
    add_label_options,
    counts_text,
    print_result,
    show_progress,
)
from emocore.errors import ConfigError
from emocore.progress import ProgressBar

#: SynthConfig's fields whose option is not the field's name with dashes.
_SYNTH_OPTIONS = {
    "n_subjects": "--subjects",
}


def cmd_synth(args: argparse.Namespace) -> int:
    from emocore.data.synthetic import SynthConfig, generate_cohort

    base = SynthConfig.full_size() if args.full_size else SynthConfig()
    overrides = {
        k: v
        for k, v in {
            "n_subjects": args.subjects,
            "grid_mm": args.grid_mm,
            "seed": args.seed,
            "signal": args.signal,
            "noise": args.noise,
            "amplitude": args.amplitude,
            "variability": args.variability,
            "atypical": tuple(args.atypical) if args.atypical is not None else None,
            "atypical_weight": args.atypical_weight,
            "layout": args.layout,
            "motion": args.motion,
            "drift": args.drift,
            "shared": args.shared,
            "shared_emotion": args.shared_emotion,
        }.items()
        if v is not None
    }
    try:
        cfg = base.replace(**overrides) if overrides else base
    except ConfigError as exc:  # SynthConfig names its fields; the user typed options
        message = str(exc)
        for field in overrides:
            option = _SYNTH_OPTIONS.get(field, "--" + field.replace("_", "-"))
            message = message.replace(f"'{field}'", option)
        raise ConfigError(message) from exc
    bar = ProgressBar("synth", show_progress(args))
    out = generate_cohort(args.out, cfg, progress=bar, overwrite=args.overwrite)
    print_result(
        {"out": str(out), "config": cfg.to_dict()},
        args.json,
        lambda o: f"synthetic cohort in {o['out']} ({o['config']['layout']} layout)",
    )
    return 0


def _prepare_options(args: argparse.Namespace):
    from emocore.data.labels import check_lag
    from emocore.data.prepare import PrepareOptions

    check_lag(args.lag, "--lag")  # the option's own name in the message
    return PrepareOptions(
        grid_mm=args.grid_mm,
        lag_s=args.lag,
        recipe=args.recipe,
        observers=args.observers,
        nonfinite=args.nonfinite,
        task=args.task,
        acq=args.acq,
        space=args.space,
        desc=args.desc,
        detrend=args.detrend,
        high_pass=None if args.high_pass == 0 else args.high_pass,
        confounds=args.confounds,
    )


def _add_layout_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "which files (BIDS entities; needed when a run is found more than once)"
    )
    g.add_argument(
        "--task",
        default=None,
        help="the task to read (studyforrest's audio movie is 'forrestgump')",
    )
    g.add_argument(
        "--acq",
        default=None,
        help="acquisition: raw ds000113 holds each run as acq-dico (distortion-corrected: "
        "use this) and acq-raw",
    )
    g.add_argument(
        "--space",
        default=None,
        help="fMRIPrep output space, e.g. MNI152NLin2009cAsym (with a resolution: "
        "MNI152NLin2009cAsym:res-2)",
    )
    g.add_argument(
        "--desc", default=None, help="description entity (fMRIPrep's BOLD runs are 'preproc')"
    )


def _add_cleaning_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "what is removed from each voxel's time series before z-scoring "
        "(as nilearn.signal.clean with filter='cosine')"
    )
    g.add_argument(
        "--detrend",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="remove a linear trend per run (default: on)",
    )
    g.add_argument(
        "--high-pass",
        type=float,
        default=0.008,
        metavar="HZ",
        help="remove cosine drift slower than this (default 0.008 Hz, a 125-s period; 0: none)",
    )
    g.add_argument(
        "--confounds",
        default=None,
        metavar="STRATEGY",
        help="fMRIPrep input: regress these confounds, read by nilearn's load_confounds from "
        "each run's *_desc-confounds_timeseries.tsv, e.g. motion,wm_csf (choices: motion, "
        "wm_csf, global_signal, compcor, high_pass; default: none)",
    )


def _cache_summary(cache) -> dict[str, Any]:
    m = cache.manifest
    return {
        "cache": str(cache.path),
        "subjects": cache.subjects,
        "grid": m["grid"]["shape"],
        "voxel_mm": m["grid"]["voxel_mm"],
        "label_counts": m["labels"]["counts"],
        "options": m["options"],
        "prepare_seconds": m.get("prepare_seconds"),
    }


def _cache_text(s: dict[str, Any]) -> str:
    from emocore.data.prepare import cleaning_sentence

    return (
        f"cache {s['cache']}: {len(s['subjects'])} subjects, grid {tuple(s['grid'])}\n"
        f"each run: {cleaning_sentence(s['options'])}\n"
        f"labels (lag {s['options']['lag_s']} s, recipe {s['options']['recipe']}):\n{counts_text(s['label_counts'])}"
    )


def _prepare_text(s: dict[str, Any]) -> str:
    def people(key: str) -> str:
        return ", ".join(f"sub-{p}" for p in s[key]) or "none"

    lines = [_cache_text(s), f"{s['action']}: added {people('added')}; kept {people('kept')}"]
    if s["not_requested"]:
        lines.append(
            f"kept although not requested: {people('not_requested')} "
            "(--force rebuilds with exactly the given subjects)"
        )
    if s["dropped"]:
        lines.append(f"dropped (--force): {people('dropped')}")
    return "\n".join(lines)


def cmd_prepare(args: argparse.Namespace) -> int:
    from emocore.data.prepare import prepare

    bar = ProgressBar("prepare", show_progress(args))
    result = prepare(
        args.bids,
        args.annotations,
        args.cache,
        options=_prepare_options(args),
        subjects=args.subject,
        progress=bar,
        force=args.force,
    )
    print_result({**_cache_summary(result.cache), **result.to_dict()}, args.json, _prepare_text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from emocore.workflows.demo import build_demo

    bar = ProgressBar("demo", show_progress(args))
    paths = build_demo(args.out, train=args.train, seed=args.seed, progress=bar)
    print_result(
        {k: str(v) for k, v in paths.items()},
        args.json,
        lambda o: "\n".join(f"{k}: {v}" for k, v in o.items()),
    )
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    from emocore.data.labels import (
        build_volume_labels,
        check_lag,
        label_counts,
        load_annotations,
        write_label_table,
    )

    check_lag(args.lag, "--lag")  # before any file is read: the rule prepare applies too
    out = Path(args.out) if args.out else Path(f"labels_{args.recipe}_lag{args.lag:g}.tsv")
    check_writable(out, "--out")
    ann = load_annotations(args.annotations)
    table = build_volume_labels(
        ann,
        lag_s=args.lag,
        recipe=args.recipe,
        observers=args.observers,
        run_offsets=args.run_offsets,
    )
    write_label_table(table, out)
    counts = label_counts(table)
    result = {
        "counts": counts,
        "n_volumes": int(len(table)),
        "table": str(out),
        "lag_s": args.lag,
        "recipe": args.recipe,
        "run_offsets": args.run_offsets,
    }
    print_result(
        result,
        args.json,
        lambda r: (
            f"{r['n_volumes']} volumes, lag {r['lag_s']:g} s, recipe {r['recipe']}:\n{counts_text(r['counts'])}\nwritten to {r['table']}"
        ),
    )
    return 0


def add_commands(sub: Any) -> None:
    """`synth`, `prepare`, `demo` and `labels`, in that order on `emocore --help`."""
    _add_synth(sub)
    _add_prepare(sub)
    _add_demo_and_labels(sub)


def _add_synth(sub: Any) -> None:
    """`emocore synth`: where the cohort goes and what its noise holds."""
    p = sub.add_parser(
        "synth",
        help="write a synthetic cohort in the ds000113 layout (with annotations and ground truth)",
        description="Write a synthetic studyforrest-like cohort: BOLD runs, observer annotations "
        "(OUT/annotations) and the planted truth (OUT/ground_truth). Read it with "
        "'emocore prepare --bids OUT --annotations OUT/annotations' in every layout.",
    )
    p.add_argument("--out", required=True, help="folder to write the cohort to")
    p.add_argument(
        "--layout",
        choices=["derivative", "raw", "fmriprep"],
        default=None,
        help="where the BOLD files go (the data are the same): 'derivative' (default) = the "
        "ds000113 aligned derivative (derivatives/non-linear_anatomical_alignment/..._rec-"
        "dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz); 'raw' = OpenNeuro ds000113 "
        "(sub-XX/ses-forrestgump/func/..._acq-dico_run-0N_bold.nii.gz, plus an acq-raw copy "
        "shifted by one voxel along y, with .json sidecars); 'fmriprep' = OUT is an fMRIPrep "
        "derivative (..._space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz, desc-brain_mask, "
        "desc-confounds_timeseries.tsv with the motion traces, readable by nilearn's "
        "load_confounds)",
    )
    p.add_argument(
        "--motion",
        type=float,
        default=None,
        metavar="PCT",
        help="head-motion noise: %% signal RMS over the brain, strongest at its edges (0 = none; "
        "default 1 with --layout fmriprep, else 0). It is in the BOLD data of every layout; only "
        "fmriprep writes the six motion traces (confounds table)",
    )
    p.add_argument(
        "--drift",
        type=float,
        default=None,
        metavar="SCALE",
        help="scale of each run's slow scanner drift (default 1: about 1 %% signal SD over a run, "
        "times --noise; real drift is often several times larger); 1 gives the data of cohorts "
        "made before this option existed",
    )
    p.add_argument(
        "--shared",
        type=float,
        default=None,
        metavar="PCT",
        help="the response to the movie that everybody shares (the same soundtrack envelope, "
        "HRF-convolved, in the auditory cortex and a weaker language network): its SD in %% "
        "signal at the auditory peak (default 0.8: an inter-subject correlation of about 0.5 "
        "in the auditory cortex, as in real listening studies; 0 = none, the data of cohorts "
        "made before this option existed)",
    )
    p.add_argument(
        "--shared-emotion",
        type=float,
        default=None,
        metavar="FRACTION",
        help="share (0-1) of the shared response's variance that follows the emotions (a "
        "louder soundtrack in angry and fearful scenes, quieter in sad and tender ones), so a "
        "model can decode them from the shared response alone (default 0; needs --shared > 0; "
        "--signal 0 turns it off)",
    )
    _add_synth_cohort_options(p)
    p.set_defaults(func=cmd_synth)


def _add_synth_cohort_options(p: argparse.ArgumentParser) -> None:
    """The cohort's size, grid, seed, signal and the people planted as atypical."""
    p.add_argument(
        "--subjects",
        type=int,
        default=None,
        help="number of people (default 4; 20 with --full-size)",
    )
    p.add_argument(
        "--grid-mm",
        type=float,
        default=None,
        help="voxel size in mm (default 7.2 -> 22x29x8 voxels; 1.2 -> 132x175x48)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed (default 0); the same seed gives the same files",
    )
    p.add_argument(
        "--signal",
        type=float,
        default=None,
        help="strength of the emotion signal (default 1; 0 = no emotion signal at all)",
    )
    p.add_argument("--noise", type=float, default=None, help="noise scale (default 1)")
    p.add_argument(
        "--amplitude",
        type=float,
        default=None,
        help="%% signal change at a pattern's peak (default 2; the demo uses 4)",
    )
    p.add_argument(
        "--variability",
        type=float,
        default=None,
        help="scale of the between-person spread of the patterns (default 1; the demo uses 0.5)",
    )
    p.add_argument(
        "--atypical",
        nargs="*",
        default=None,
        metavar="XX",
        help="the people planted as atypical (LOVE response mostly their SADNESS response); "
        "default the last person; give the flag alone to plant nobody",
    )
    p.add_argument(
        "--atypical-weight",
        type=float,
        default=None,
        help="share of the planted people's LOVE pattern taken from their SADNESS pattern "
        "(default 0.85)",
    )
    p.add_argument(
        "--full-size",
        action="store_true",
        help="the real study's size: 20 people, 132x175x48 voxels (hundreds of GB: plan disk first)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a cohort made with other options"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_prepare(sub: Any) -> None:
    """`emocore prepare`."""
    p = sub.add_parser(
        "prepare",
        help="build the volume cache (z-scored float16, memory-mapped) and the label table",
    )
    p.add_argument(
        "--bids",
        required=True,
        help="dataset folder: ds000113 (aligned derivative or raw), an fMRIPrep output folder, or a synthetic cohort (see README, Data layouts)",
    )
    p.add_argument(
        "--annotations",
        required=True,
        help="folder with the raw observer CSVs (labs2015-emotionannotation/data/raw layout)",
    )
    p.add_argument("--cache", required=True, help="folder for the cache")
    p.add_argument(
        "--grid-mm",
        type=float,
        default=None,
        help="resample to voxels of this size (default: keep the data's grid)",
    )
    add_label_options(p)
    _add_layout_options(p)
    _add_cleaning_options(p)
    p.add_argument(
        "--subject",
        action="append",
        default=None,
        help="only this subject label (repeatable), e.g. --subject 01",
    )
    p.add_argument(
        "--nonfinite",
        default="error",
        choices=["error", "zero"],
        help="what to do with NaN/Inf voxels (default: stop with an error)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="rebuild the cache from scratch with exactly the given subjects (drops people not "
        "given; without it, people are added to an existing cache and none is ever dropped)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_prepare)


def _add_demo_and_labels(sub: Any) -> None:
    """`emocore demo` and `emocore labels`."""
    p = sub.add_parser(
        "demo",
        help="build the demo cohort and its cache (and, with --train, a demo study) in one go",
        description="Ten synthetic people in the ds000113 layout, one of them (sub-10) planted "
        "as atypical: their LOVE response is mostly their SADNESS response. With --train, the "
        "demo study (leave-one-subject-out, the primary analysis, and cross-subject, "
        "exploratory; 1 epoch) and one verdict per person. Two more people stay in the "
        "dataset, out of the cache, to try `emocore assess` on: sub-11, typical, and sub-12, "
        "planted like sub-10.",
    )
    p.add_argument(
        "--out", default=str(DEMO_DIR), help=f"folder for everything (default ./{DEMO_DIR})"
    )
    p.add_argument(
        "--train",
        action="store_true",
        help="also run the demo study (about 3 minutes on 2 CPU cores)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic cohort and training (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the paths as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "labels", help="build one emotion label per fMRI volume from the raw observer annotations"
    )
    p.add_argument(
        "--annotations",
        required=True,
        help="folder with av1o*.csv/ao1o*.csv (or a parent holding raw/ or labs2015-emotionannotation/data/raw)",
    )
    add_label_options(p)
    p.add_argument(
        "--run-offsets",
        default="correct",
        choices=["correct", "poster"],
        help="'poster' uses the prototype's wrong run offsets (to show the error); default correct",
    )
    p.add_argument(
        "--out",
        default=None,
        help="where to write the TSV table (default ./labels_<recipe>_lag<lag>.tsv)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print counts per class (keys are class names) and the table's path as JSON",
    )
    p.set_defaults(func=cmd_labels)
