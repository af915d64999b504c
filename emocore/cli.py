"""The ``emocore`` command: parses options, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emocore import __version__
from emocore._io import check_writable
from emocore.errors import ConfigError, EmocoreError, exit_code
from emocore.progress import ProgressBar

logger = logging.getLogger("emocore")

DEMO_DIR = Path(os.environ.get("EMOCORE_HOME", "emocore-data"))


def _show_progress(args: argparse.Namespace) -> bool:
    """Progress goes to stderr unless --json or -q/--quiet was given."""
    return not getattr(args, "json", False) and not getattr(args, "quiet", False)


def _json(obj: Any) -> str:
    """Strict JSON: missing values (None, NaN, infinity) are null; other types as their text."""
    from emocore._io import json_safe

    return json.dumps(json_safe(obj), indent=1, default=str, allow_nan=False)


def _print(obj: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json:
        print(_json(obj))
    else:
        print(text(obj) if text else obj)


def _counts_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return (
        "\n".join(f"  {k:<10} {v:>6}" for k, v in counts.items()) + f"\n  {'total':<10} {total:>6}"
    )


# -- data commands ---------------------------------------------------------------------------
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
    bar = ProgressBar("synth", _show_progress(args))
    out = generate_cohort(args.out, cfg, progress=bar, overwrite=args.overwrite)
    _print(
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
        f"labels (lag {s['options']['lag_s']} s, recipe {s['options']['recipe']}):\n{_counts_text(s['label_counts'])}"
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

    bar = ProgressBar("prepare", _show_progress(args))
    result = prepare(
        args.bids,
        args.annotations,
        args.cache,
        options=_prepare_options(args),
        subjects=args.subject,
        progress=bar,
        force=args.force,
    )
    _print({**_cache_summary(result.cache), **result.to_dict()}, args.json, _prepare_text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from emocore.workflows.demo import build_demo

    bar = ProgressBar("demo", _show_progress(args))
    paths = build_demo(args.out, train=args.train, seed=args.seed, progress=bar)
    _print(
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
    _print(
        result,
        args.json,
        lambda r: (
            f"{r['n_volumes']} volumes, lag {r['lag_s']:g} s, recipe {r['recipe']}:\n{_counts_text(r['counts'])}\nwritten to {r['table']}"
        ),
    )
    return 0


# -- model commands --------------------------------------------------------------------------
def _epochs_option(text: str) -> int | str:
    """--epochs: a count, or 'auto' (chosen per fold on an inner fold)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number or 'auto'; {text!r} was given") from None


def _linear_C_option(text: str) -> float | str:
    """--linear-C: a positive number, or 'auto' (chosen per fold on inner folds)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'auto'; {text!r} was given") from None


def _tuning_text(tuning: dict[str, Any]) -> str:
    """One line per design and model family whose settings were chosen on inner folds."""
    lines = []
    for design, families in tuning.items():
        for family, folds in families.items():
            chosen = [v for v in folds.values() if v.get("how") != "fixed"]
            if not chosen:
                continue
            key = "epochs" if family == "cnn" else "C"
            values = ", ".join(f"{k.split(' ', 1)[-1]}: {v[key]:g}" for k, v in folds.items())
            line = f"tuned on inner folds, {design} {family} {key}: {values}"
            edge = sum(bool(v.get("at_limit")) for v in folds.values())
            if edge:
                limit = "the maximum epochs" if family == "cnn" else "an end of the C grid"
                line += f" ({edge} at {limit}: the best setting may lie beyond it)"
            lines.append(line)
    return "\n".join(lines)


def _study_config(args: argparse.Namespace, designs: tuple[str, ...]):
    from emocore.training.train import TrainConfig
    from emocore.workflows.study import StudyConfig

    auto = args.epochs == "auto"
    train = TrainConfig(
        epochs=args.max_epochs if auto else args.epochs,
        epoch_selection="inner" if auto else "fixed",
        lr=args.lr,
        batch_size=args.batch_size,
        class_weights=args.class_weights,
        dropout=args.dropout,
        seed=args.seed,
        device=args.device,
        compile=args.compile,
    )
    return StudyConfig(
        designs=designs,
        subjects=tuple(args.subject) if args.subject else None,
        split=args.split,
        n_folds=args.n_folds,
        include_none=args.classes == 6,
        refit=not args.no_refit,
        baseline=not args.no_baseline,
        linear_C=args.linear_C,
        saliency=not args.no_saliency,
        saliency_volumes=args.saliency_volumes,
        saliency_method=args.saliency_method,
        n_permutations=args.permutations,
        alpha=args.alpha,
        primary=args.primary,
        focus=tuple(e.strip() for e in args.focus.split(",") if e.strip()),
        folds=tuple(getattr(args, "fold", None) or ()) or None,
        train=train,
    )


def _headline_text(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'design':<15}{'model':<8}{'split':<24}{'bal.acc':>8}{'95% CI':>16}{'chance':>8}{'p':>8}  per emotion"
    ]
    for r in results:
        ci = r["ci95"] or [None, None]
        fmt = lambda v: "  n/a" if v is None else f"{v:.3f}"  # noqa: E731
        per = " ".join(f"{k[:4]}={fmt(v)}" for k, v in r["per_class_accuracy"].items())
        split = r["split"] + (" (LEAKY)" if r["leaky"] else "")
        lines.append(
            f"{r['design']:<15}{r['model']:<8}{split:<24}{fmt(r['balanced_accuracy']):>8}{'[' + fmt(ci[0]) + ', ' + fmt(ci[1]) + ']':>16}{fmt(r['chance_balanced_accuracy']):>8}{fmt(r['p_value']):>8}  {per}"
        )
    lines.append(
        "chance = mean balanced accuracy when the true labels are circularly shifted within each run (temporal structure kept)"
    )
    return "\n".join(lines)


def _run_study(args: argparse.Namespace, designs: tuple[str, ...], kind: str) -> int:
    from dataclasses import replace

    from emocore.data.cache import open_cache
    from emocore.runs.registry import Registry, check_resumable
    from emocore.training.distributed import init_from_env, scratch_folder
    from emocore.workflows.study import resume_study, run_study

    rank, world, device = init_from_env()
    bar = ProgressBar(kind, _show_progress(args) and rank == 0)
    if getattr(args, "resume", None):
        if world > 1:
            raise ConfigError("--resume runs on one process; start it without torchrun")
        registry = Registry(args.registry, create=False)  # the run to resume is in it
        check_resumable(registry.get_run(args.resume))  # before the cache: an assess run?
        registry.check_writable("resume a run")
        done = resume_study(registry, args.resume, open_cache(args.cache), progress=bar)
    else:
        # the options and the cache are checked before the registry is opened: a bad option
        # or a mistyped --cache leaves no new registry folder behind
        config = _study_config(args, designs)
        if world > 1:
            config = replace(config, train=replace(config.train, device=device))
        cache = open_cache(args.cache)
        registry = Registry(args.registry if rank == 0 else scratch_folder())
        done = run_study(cache, registry, config, kind=kind, progress=bar)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # every rank is done before the process group goes away
        dist.destroy_process_group()
    if rank != 0:
        return 0
    study = done.study
    result = {
        "run_id": done.run_id,
        "bundle": str(done.folder),
        "results": study["results"],
        "seconds": study["seconds"],
        "train_volumes_per_s": study["train_volumes_per_s"],
        "peak_gpu_memory_gib": study.get("peak_gpu_memory_gib", {}),
        "saliency_auc": {
            d: {m: {e: v["auc_vs_truth"] for e, v in maps.items()} for m, maps in models.items()}
            for d, models in study["saliency"].items()
        },
        "embeddings": study["embeddings"],
        "alpha": study.get("alpha"),
        "primary": study.get("primary"),
        "verdicts": study.get("verdicts", []),
        "atypical": study.get("atypical", []),
        "tuning": study.get("tuning", {}),
        "saliency_checks": study.get("saliency_checks", {}),
    }
    _print(
        result,
        args.json,
        lambda r: "\n".join(
            line
            for line in (
                f"run {r['run_id']} ({r['seconds']:.0f} s), bundle in {r['bundle']}",
                _verdicts_text(r["verdicts"], r["primary"]),
                _headline_text(r["results"]),
                _tuning_text(r["tuning"]),
                _findings_text(r["atypical"], r["alpha"], exploratory=r["primary"]),
            )
            if line
        ),
    )
    return 0


def _verdicts_text(verdicts: list[dict[str, Any]], primary: dict[str, Any] | None) -> str:
    """Each person's verdict, flagged people first: what the study answers."""
    if not primary:
        return ""
    from emocore.stats.verdict import Primary

    label = (Primary.from_dict(primary) or Primary("loso")).label
    if not verdicts:
        return f"verdicts (primary analysis: {label}): none (the primary analysis was not run)"
    order = sorted(verdicts, key=lambda v: (v["status"] != "flagged", str(v["subject"])))
    flagged = sum(v["status"] == "flagged" for v in verdicts)
    lines = [f"verdicts (primary analysis: {label}; {flagged} of {len(verdicts)} people flagged):"]
    lines += [f"  {v['sentence']}" for v in order]
    return "\n".join(lines)


def _findings_text(
    atypical: list[dict[str, Any]],
    alpha: float | None,
    *,
    exploratory: dict[str, Any] | None = None,
) -> str:
    """The flagged single-case findings as sentences, or a line saying there are none. With
    ``exploratory`` (the primary analysis) only the other designs' findings, labelled as
    exploratory: the primary analysis speaks through the verdicts."""
    if exploratory:
        atypical = [
            f
            for f in atypical
            if (f.get("design"), f.get("model")) != (exploratory["design"], exploratory["model"])
        ]
        head_word = "exploratory findings (not part of any verdict; Holm-adjusted per design"
    else:
        head_word = "single-case findings (Holm-adjusted"
    flagged = [f for f in atypical if f.get("flagged")]
    tested = {(f["design"], f["model"], f["subject"]) for f in atypical if f.get("p") is not None}
    if not atypical:
        return "" if exploratory else "single-case findings: none computed"
    if not tested:
        return f"{head_word.split(' (')[0]}: not tested (at least 5 other people are needed per design)"
    head = (
        f"{head_word}, alpha = {alpha:g}; {len(tested)} person x design x model comparisons): "
        f"{len(flagged)} flagged"
    )
    return "\n".join([head] + [f"  [{f['design']}, {f['model']}] {f['sentence']}" for f in flagged])


def cmd_study(args: argparse.Namespace) -> int:
    return _run_study(args, tuple(args.designs), "study")


def cmd_train(args: argparse.Namespace) -> int:
    return _run_study(args, (args.design,), "train")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emocore.runs.registry import Registry
    from emocore.workflows.study import evaluate_runs

    if args.permutations < 1:  # before anything is opened (evaluate_runs says it too)
        raise ConfigError(
            f"--permutations must be at least 1 (chance levels and p-values need them); "
            f"{args.permutations} was given"
        )
    registry = Registry(args.registry, create=False)  # the runs to evaluate are in it
    registry.check_writable("record an evaluation (an evaluate run)")
    out = evaluate_runs(
        registry,
        args.run,
        n_permutations=args.permutations,
        linear=args.linear,
        seed=args.seed,
        alpha=args.alpha,
    )

    def text(o: dict[str, Any]) -> str:
        lines = [f"evaluation {o['run_id']} of run {', '.join(o['source_runs'])}"]
        verdicts = _verdicts_text(o.get("verdicts") or [], o.get("primary"))
        if o.get("verdicts"):
            lines.append(verdicts)
        for d, ev in o["designs"].items():
            s = ev["summary"]
            lines.append(
                f"{d} [{s['split']}{', LEAKY' if s['leaky'] else ''}]: balanced accuracy {s['balanced_accuracy']:.3f} (chance {s['chance']['balanced_accuracy_permutation']:.3f}, p = {s['p_value']['balanced_accuracy']:.4f}), accuracy {s['accuracy']:.3f} (chance {s['chance']['accuracy_permutation']:.3f})"
            )
            lines += ["  " + m["sentence"] for m in ev["misclassification"] if m["n"]][
                : 3 * len(o["classes"])
            ]
        return "\n".join(lines)

    _print(out, args.json, text)
    return 0


def cmd_assess(args: argparse.Namespace) -> int:
    from emocore.runs.registry import Registry
    from emocore.workflows.assess import add_and_assess

    result = add_and_assess(
        args.cache,
        Registry(args.registry, create=False),  # the study to assess against is in it
        args.run,
        args.subject,
        bids=args.bids,
        annotations=args.annotations,
        alpha=args.alpha,
        device=args.device,
        progress=ProgressBar("assess", _show_progress(args)),
        assess_id=args.job,
        force=args.force,
        exploratory=args.exploratory,
    )

    def text(r: dict[str, Any]) -> str:
        lines = [f"sub-{r['subject']} against the cohort of run {r['run_id']}:"]
        if r.get("reused"):
            lines.append(
                f"  already assessed (assess run {r.get('assess_run_id')}): this is that "
                "assessment; pass --force to assess again and replace it"
            )
        verdict = r.get("verdict")
        if verdict:
            lines.append(f"  verdict: {verdict['sentence']}")
            lines += [
                f"  detectable: {d['sentence']}"
                for d in verdict.get("detectable_effect", [])
                if d["measure"] != "recall" or verdict["status"] == "flagged"
            ][:9]
        for design, d in r["designs"].items():
            role = d.get("role", "primary")
            if d["status"] != "assessed":
                lines.append(f"  {design} ({role}): {d['reason']}")
                continue
            lines.append(
                f"  {design} ({role}): balanced accuracy {d['balanced_accuracy']:.3f} over "
                f"{d['n_volumes']} volumes, against {d['n_others']} people"
            )
        if r.get("primary"):
            text = _findings_text(r["atypical"], r["alpha"], exploratory=r["primary"])
            if text:
                lines.append(text)
        else:  # an assessment from before verdicts
            lines.append(_findings_text(r["atypical"], r["alpha"]))
        return "\n".join(lines)

    _print(result, args.json, text)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from emocore.data.cache import open_cache
    from emocore.runs.registry import Registry
    from emocore.runs.results import RunResults
    from emocore.stats.summaries import summarize_predictions
    from emocore.workflows.inference import seen_in_training, subject_predictions
    from emocore.workflows.jobs import headline_sentences

    if args.permutations < 1:
        raise ConfigError(
            f"--permutations must be at least 1 (chance levels and p-values need them); "
            f"{args.permutations} was given"
        )
    run = RunResults(Registry(args.registry, create=False), args.run)
    cache = open_cache(args.cache)
    out_path = check_writable(args.out, "--out") if args.out else None  # before the model runs
    bar = ProgressBar("predict", _show_progress(args))
    table = subject_predictions(
        run,
        args.model,
        cache,
        args.subject,
        device=args.device,
        batch_size=args.batch_size,
        progress=bar,
    )
    assert table is not None
    if out_path is not None:
        from emocore._io import atomic_write_text

        atomic_write_text(out_path, table.to_csv(sep="\t", index=False))
    classes = [c.removeprefix("prob_") for c in table.columns if c.startswith("prob_")]
    seen = seen_in_training(table)
    split = "in-sample" if seen else "unseen subject"
    summary = summarize_predictions(
        table,
        classes=classes,
        split=split,
        design=args.model,
        leaky=seen,
        n_permutations=args.permutations,
    )
    result = {
        "run_id": args.run,
        "model": args.model,
        "subject": args.subject,
        "n_volumes": len(table),
        "split": split,
        "in_sample": seen,
        "accuracy": summary["accuracy"],
        "balanced_accuracy": summary["balanced_accuracy"],
        "chance_balanced_accuracy": summary["chance"]["balanced_accuracy_permutation"],
        "p_value": summary["p_value"]["balanced_accuracy"],
        "volumes_per_s": table.attrs.get("volumes_per_s"),
        "engine": table.attrs.get("engine"),
        "table": str(out_path) if out_path else None,
    }
    design = args.model.split("/")[0]
    held_out = [
        line
        for line in headline_sentences(run.record.metrics.get("results") or [])
        if line.startswith(f"{design}:")
    ]
    _print(result, args.json, lambda r: _predict_text(r, held_out))
    return 0


def _predict_text(r: dict[str, Any], held_out: list[str]) -> str:
    """predict's result in words: the numbers, then the split and whether the person was in
    the model's training set (and, for an in-sample run, where the held-out estimate is)."""
    lines = [
        f"sub-{r['subject']} with {r['model']} of run {r['run_id']}: balanced accuracy "
        f"{r['balanced_accuracy']:.3f} over {r['n_volumes']} volumes (chance "
        f"{r['chance_balanced_accuracy']:.3f}, p = {r['p_value']:.4f})"
    ]
    if r["in_sample"]:
        lines.append(
            f"split: in-sample. sub-{r['subject']} WAS in this model's training set: it was "
            "trained on these volumes, so this is not a measure of accuracy"
        )
        lines += [
            f"held-out estimate of this design in the run (all its people): {line}"
            for line in held_out
        ]
    else:
        lines.append(
            f"split: unseen subject. sub-{r['subject']} was NOT in this model's training set: "
            "a held-out estimate for this person"
        )
    return "\n".join(lines)


def cmd_runs(args: argparse.Namespace) -> int:
    from emocore.runs.registry import Registry

    chosen = [o for o, v in (("--show", args.show), ("--delete", args.delete)) if v]
    chosen += ["--forget"] if args.forget else []
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} cannot be combined; give one of them")
    registry = Registry(args.registry, create=False)  # a mistyped --registry creates nothing
    # A run whose process died (killed, out of memory, machine restarted) would show as running
    # forever: mark it failed, with the reason, before anything is shown.
    stale = registry.mark_stale()
    if args.show:
        rec = registry.get_run(args.show, strict=False)  # a damaged row: shown with its problem
        d = rec.to_dict()
        d["database"] = str(registry.db)
        d["folder"] = str(registry.run_dir(rec.id))
        d["folder_problem"] = registry.folder_problem(rec.id)
        d["disk_bytes"] = registry.disk_usage(rec.id)
        arts = registry.artifacts(rec.id)
        arts["exists"] = [Path(a).exists() for a in arts["abspath"]]
        d["artifacts"] = arts[["name", "kind", "bytes", "path", "exists"]].to_dict("records")
        _print(d, args.json, _run_text)
        return 0
    if args.delete:
        registry.delete_run(args.delete)
        _print({"deleted": args.delete}, args.json, lambda r: f"deleted run {r['deleted']}")
        return 0
    if args.forget:
        gone = registry.folder_problem(args.forget) is not None
        folder = registry.run_dir(args.forget)
        registry.forget_run(args.forget)
        _print(
            {"forgotten": args.forget, "folder": str(folder), "folder_missing": gone},
            args.json,
            lambda r: (
                f"removed run {r['forgotten']} from the registry at {registry.root}; "
                + (
                    f"its folder {folder} was already gone"
                    if gone
                    else f"its folder {folder} was kept (delete it by hand when it is not needed)"
                )
            ),
        )
        return 0
    runs = registry.list_runs(kind=args.kind, status=args.status)
    usage = registry.disk_usage()
    rows = [
        {
            "id": r.id,
            "created_at": r.created_at,
            "user": r.user,
            "kind": r.kind,
            "design": r.design,
            "split": r.split,
            "leaky": bool(r.leaky),
            "status": r.status,
            "subjects": r.subjects,
            "disk_bytes": registry.disk_usage(r.id)["total"],
            "error": r.error,
            "unreadable": r.unreadable,
            "folder_problem": registry.folder_problem(r.id),
        }
        for r in runs.itertuples()
    ]

    def text(rs: list[dict[str, Any]]) -> str:
        lines = [f"{'id':<22}{'kind':<9}{'design':<16}{'split':<24}{'status':<11}{'disk':>9}"]
        for r in rs:
            split = (r["split"] or "—") + (" LEAKY" if r["leaky"] else "")  # assess: no split
            disk = "missing" if r["folder_problem"] else f"{r['disk_bytes'] / 2**20:>7.1f}MB"
            status = "UNREADABLE" if r["unreadable"] else r["status"]
            lines.append(
                f"{r['id']:<22}{str(r['kind']):<9}{str(r['design'] or 'all'):<16}{split:<24}{status:<11}{disk:>9}"
            )
        for r in rs:
            if r["id"] in stale:
                lines.append(f"run {r['id']} was marked failed: {r['error']}")
            if r["unreadable"]:
                lines.append(
                    f"run {r['id']} is unreadable: its row in {registry.db} is damaged "
                    f"({r['unreadable']}); `emocore runs --show {r['id']}` shows what can be read"
                )
            if r["folder_problem"]:
                lines.append(f"run {r['id']}: {r['folder_problem']}")
        if registry.read_only:
            lines.append(f"(the registry {registry.root} is read-only: shown as it is)")
        lines.append(
            f"{len(rs)} runs; models and files use {usage['total'] / 2**20:.1f} MB ({', '.join(f'{k} {v / 2**20:.1f} MB' for k, v in usage.items() if k != 'total') or 'nothing yet'})"
        )
        return "\n".join(lines)

    _print(
        {"runs": rows, "disk_bytes": usage, "marked_failed": stale},
        args.json,
        lambda o: text(o["runs"]),
    )
    return 0


def _mb(n: Any) -> str:
    return f"{(n or 0) / 2**20:.1f} MB"


def _run_text(d: dict[str, Any]) -> str:
    """One run (``runs --show``) for a reader: what it is, its state, settings, headline
    accuracy with split and chance, and its files."""
    from emocore.runs.registry import run_label
    from emocore.workflows.jobs import headline_sentences

    config = d.get("config") or {}
    train = config.get("train") or {}
    on = lambda v: "on" if v else "off"  # noqa: E731
    state = f"{d['status']} ({100 * (d.get('progress') or 0):.0f} %)"
    state += f" — {d['message']}" if d.get("message") else ""
    gone = d.get("folder_problem")
    if gone:
        state += "; so recorded, but ITS FILES ARE GONE (see 'files' below)"
    lines = [
        f"run {d['id']}: {run_label(d)}",
        f"  status      {state}",
        f"  created     {d['created_at']} by {d.get('user') or '?'} on {d.get('host') or '?'}"
        + (f" (pid {d['pid']})" if d.get("pid") else ""),
        f"  updated     {d['updated_at']}",
    ]
    if d.get("unreadable"):
        lines.append(
            f"  DAMAGED     its row in the registry database {d.get('database')} cannot be read "
            f"in full: {d['unreadable']}. Restore that file from a backup, or remove the run "
            f"from the registry with `emocore runs --forget {d['id']}` (its folder is kept)"
        )
    if gone:
        lines.append(f"  files       MISSING: {gone}")
    lines += [
        f"  split       {d.get('split') or 'n/a'}" + (" (LEAKY)" if d.get("leaky") else ""),
        f"  people      {', '.join(f'sub-{p}' for p in d.get('subjects') or []) or 'n/a'}",
    ]
    if config.get("designs"):
        folds = config.get("n_folds") or "one per run"
        lines.append(
            f"  settings    designs {' + '.join(config['designs'])}; folds {folds}; "
            f"{'6 classes (with NONE)' if config.get('include_none') else '5 emotions'}; "
            f"epochs {train.get('epochs')}, lr {train.get('lr')}, batch {train.get('batch_size')}"
            f", class weights {on(train.get('class_weights'))}, dropout {train.get('dropout')}, "
            f"seed {train.get('seed')}, device {train.get('device')}; permutations "
            f"{config.get('n_permutations')}, alpha {config.get('alpha')}, baseline "
            f"{on(config.get('baseline'))}, saliency {on(config.get('saliency'))}"
        )
    elif config:
        lines.append(f"  settings    {', '.join(f'{k} {v}' for k, v in config.items())}")
    results = (d.get("metrics") or {}).get("results") or []
    headline = headline_sentences(results) + [
        f"{line} [linear baseline]" for line in headline_sentences(results, model="linear")
    ]
    for i, line in enumerate(headline):
        lines.append(f"  {'results' if i == 0 else '':<12}{line}")
    for key in ("error", "parent", "notes"):
        if d.get(key):
            lines.append(f"  {key:<12}{d[key]}")
    if d.get("data_hash"):
        lines.append(
            f"  data        cache key {d['data_hash']}, emocore {d.get('emocore_version')}"
        )
    usage = d.get("disk_bytes") or {}
    parts = ", ".join(f"{k} {_mb(v)}" for k, v in usage.items() if k != "total")
    if gone:
        lines.append(f"  disk        nothing ({_mb(usage.get('total'))} recorded, now missing)")
    else:
        lines.append(f"  disk        {_mb(usage.get('total'))}" + (f" ({parts})" if parts else ""))
    for a in d.get("artifacts") or []:
        size = _mb(a["bytes"]) if a.get("exists", True) else "missing"
        lines.append(f"    {a['kind']:<12}{a['name']:<36}{size:>10}  {a['path']}")
    lines.append("(--json prints everything, as JSON)")
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    from emocore.models.engine import describe_path
    from emocore.workflows.bench import run_bench

    try:
        grid = tuple(int(v) for v in args.grid.split(","))
    except ValueError:
        grid = ()
    if len(grid) != 3 or min(grid) < 4:
        raise ConfigError(
            f"--grid takes three sides of at least 4 voxels, e.g. 22,29,8; '{args.grid}' was given"
        )
    result = run_bench(
        device=args.device,
        grid=grid,
        batch_size=args.batch_size,
        compile=args.compile,
        volumes=args.volumes,
        epochs=args.epochs,
        data=not args.no_data,
        model=not args.no_model,
        e2e=not args.no_e2e,
        stats=not args.no_stats,
        folder=args.workdir,
    )

    def pair(m: dict[str, Any], what: str) -> str:
        base, fast = m[f"{what}_baseline_volumes_per_s"], m[f"{what}_fast_volumes_per_s"]
        return f"baseline {base:,.1f} vol/s, emocore {fast:,.1f} vol/s (x{m[f'{what}_ratio']})"

    def gpu_mem(m: dict[str, Any], what: str) -> str:
        peaks = [m.get(f"{what}_baseline_peak_gpu_gib"), m.get(f"{what}_fast_peak_gpu_gib")]
        if peaks[1] is None:
            return ""
        return f"; peak GPU memory {peaks[0]} / {peaks[1]} GiB"

    def text(r: dict[str, Any]) -> str:
        gpu = r["gpu"]
        lines = [
            f"device: {r['device']}"
            + (
                f" ({gpu['name']}, torch {r['torch']})"
                if gpu.get("available") and r["device"].startswith("cuda")
                else f" ({r['cpu_threads']} torch threads, {r['cpu_count']} cores, torch {r['torch']})"
            )
        ]
        if "model" in r:
            m = r["model"]
            lines += [
                f"model only: seed network on {tuple(m['grid'])}, {m['parameters']:,} parameters, "
                f"training batch {m['batch_size']}",
                f"  training : {pair(m, 'train')}{gpu_mem(m, 'train')}",
                f"  inference: {pair(m, 'infer')}{gpu_mem(m, 'infer')}",
                f"  emocore inference path: {describe_path(m['infer_fast_path'])}",
            ]
        if "e2e" in r:
            e = r["e2e"]
            lines += [
                f"end to end from a warm cache: {e['volumes']:,} volumes of {tuple(e['grid'])} "
                f"(baseline: DataLoader over single volumes, eager fp32)",
                f"  training : {pair(e, 'train')}{gpu_mem(e, 'train')}"
                f" [emocore reads {e['train_fast_source']}; first epoch {e['train_fast_first_epoch_seconds']} s]",
                f"  inference: {pair(e, 'infer')}{gpu_mem(e, 'infer')}"
                f" [first call {e['infer_fast_first_call_seconds']} s]",
                f"  same predicted class as the fp32 baseline: {100 * e['infer_agreement']:.2f} % "
                f"of volumes (largest probability difference {e['infer_max_probability_difference']})",
                f"  emocore inference path: {describe_path(e['infer_fast_path'])}",
            ]
        if "data" in r:
            d = r["data"]
            lines.append(
                f"demo cohort ({d['subjects']} people, {tuple(d['grid'])}): synth {d['synth_seconds']} s + prepare {d['prepare_seconds']} s = {d['synth_plus_prepare_seconds']} s; prepare peak RSS {d['prepare_peak_rss_mib']} MiB"
            )
            lines.append(
                f"  cache random single-volume reads: {d['cache_random_reads_per_s']:,.0f} volumes/s"
            )
        if "stats" in r:
            t = r["stats"]
            lines.append(
                f"permutation test ({t['permutations']:,} circular shifts, {t['volumes']:,} "
                f"volumes): baseline {t['permutation_baseline_seconds']} s (np.roll + "
                f"scikit-learn per shift), emocore {t['permutation_test_seconds']} s "
                f"(x{t['permutation_ratio']})"
            )
        return "\n".join(lines)

    _print(result, args.json, text)
    return 0


def _add_compile_option(p: argparse.ArgumentParser, what: str) -> None:
    # the values of emocore.models.engine.COMPILE_CHOICES, written out: the parser must not import torch
    p.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help=f"torch.compile {what}: auto = on CUDA when Triton is installed; "
        "falls back to eager if compiling fails (default auto)",
    )


def _add_store_options(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """--cache and --registry, defaulting to the demo layout under $EMOCORE_HOME."""
    if cache:
        p.add_argument(
            "--cache",
            default=str(DEMO_DIR / "cache"),
            help=f"the prepared cache (default ./{DEMO_DIR}/cache)",
        )
    p.add_argument(
        "--registry",
        default=str(DEMO_DIR / "registry"),
        help=f"the run registry (default ./{DEMO_DIR}/registry)",
    )


def _add_train_options(p: argparse.ArgumentParser) -> None:
    _add_store_options(p)
    p.add_argument(
        "--subject",
        action="append",
        default=None,
        help="only this subject (repeatable; default all)",
    )
    p.add_argument(
        "--split",
        default="leave-one-run-out",
        choices=["leave-one-run-out", "loro", "random"],
        help="within-person split: leave-one-run-out (default) or random (LEAKY: reproduces the poster only). LOSO always holds out the person",
    )
    p.add_argument(
        "--n-folds",
        type=int,
        default=None,
        help="run folds (default one per run; 4 holds out runs {1,5}, {2,6}, ...)",
    )
    p.add_argument(
        "--epochs",
        type=_epochs_option,
        default=50,
        help="training epochs (default 50, the poster's fixed setting), or 'auto': each outer "
        "fold chooses its count by early stopping on an inner fold of its own training runs "
        "(people, for LOSO), at most --max-epochs",
    )
    p.add_argument(
        "--max-epochs",
        type=int,
        default=50,
        help="the most epochs --epochs auto may choose (default 50)",
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 0.001)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument(
        "--dropout", type=float, default=0.0, help="dropout before the last layer (default 0)"
    )
    p.add_argument(
        "--class-weights", action="store_true", help="weight the loss by inverse class frequency"
    )
    p.add_argument(
        "--classes",
        type=int,
        default=5,
        choices=[5, 6],
        help="5 emotions (default; NONE volumes dropped) or 6 with NONE",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to train (default: the GPU when there is one)",
    )
    _add_compile_option(p, "the training model")
    p.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="circular-shift permutations for chance and p-values (default 1000)",
    )
    _add_alpha_option(p)
    p.add_argument(
        "--primary",
        default=None,
        metavar="DESIGN:MODEL",
        help="the primary analysis, named before the results: the only design and model whose "
        "tests make each person's verdict (default loso:cnn when the study runs loso, else "
        "single-subject:cnn, else cross-subject:cnn); every other one is exploratory",
    )
    p.add_argument(
        "--focus",
        default="LOVE,FEAR",
        help="the emotions of the clinical question, comma-separated: a verdict spends most of "
        "its alpha on them (default LOVE,FEAR)",
    )
    p.add_argument(
        "--no-refit",
        action="store_true",
        help="skip the final model on all data (saves time; no model to reuse)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the linear decoder")
    p.add_argument(
        "--linear-C",
        dest="linear_C",
        type=_linear_C_option,
        default=0.01,
        help="the linear decoder's regularisation C (default 0.01, fixed), or 'auto': chosen "
        "per outer fold on inner folds of its training rows by balanced accuracy",
    )
    p.add_argument("--no-saliency", action="store_true", help="skip saliency maps")
    p.add_argument(
        "--saliency-volumes",
        type=int,
        default=16,
        help="volumes per emotion each saliency map (SmoothGrad) averages over (default 16); "
        "each map is checked against weight-randomised copies of the model and, on synthetic "
        "data, against the planted pattern",
    )
    p.add_argument(
        "--saliency-method",
        # emocore.interpret.saliency.METHODS, written out: the parser must not import torch
        choices=["smoothgrad", "grad-cam", "integrated-gradients", "gradient"],
        default="smoothgrad",
        help="how the saliency maps are made (default smoothgrad: the gradient averaged over "
        "noisy copies of each volume, which a weight-randomised model cannot reproduce; "
        "integrated gradients multiply by the input and fail that check; see README)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON (metric names: see README)"
    )


def _alpha(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1); {text} was given")
    return value


def _add_alpha_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--alpha",
        type=_alpha,
        default=0.05,
        help="level of every verdict: the chance that a typical person is flagged for anything "
        "is at most this (default 0.05)",
    )


def _add_model_commands(sub: Any) -> None:  # noqa: PLR0915
    from emocore.training.designs import DESIGNS

    p = sub.add_parser(
        "study",
        help="the poster's study in one go: single-subject, cross-subject and leave-one-subject-out, with baseline, saliency and one results bundle",
    )
    _add_train_options(p)
    p.add_argument(
        "--designs",
        nargs="+",
        default=list(DESIGNS),
        choices=list(DESIGNS),
        help="designs to run (default all three)",
    )
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("train", help="train and cross-validate one design")
    _add_train_options(p)
    p.add_argument(
        "--design",
        default="single-subject",
        choices=list(DESIGNS),
        help="single-subject (one model per person; default), cross-subject or loso",
    )
    p.add_argument(
        "--fold",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this fold (repeatable), e.g. --design loso --fold sub-03: one LOSO fold "
        "per job (a Slurm array); merge the runs with `emocore evaluate --run A --run B ...`",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_ID",
        default=None,
        help="continue an interrupted run (its config is reused; finished folds are kept)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="re-evaluate a run's held-out predictions (chance, p-values, misclassifications)",
    )
    p.add_argument(
        "--run",
        required=True,
        action="append",
        help="the run id (see `emocore runs`); repeat it to evaluate runs of single folds "
        "(`train --fold`) together, as one cross-validation",
    )
    _add_store_options(p, cache=False)
    p.add_argument(
        "--permutations", type=int, default=1000, help="circular-shift permutations (default 1000)"
    )
    p.add_argument(
        "--linear", action="store_true", help="evaluate the linear baseline instead of the CNN"
    )
    _add_alpha_option(p)
    p.add_argument(
        "--seed", type=int, default=0, help="random seed of the permutations (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "assess",
        help="assess a newly scanned person against a study's cohort: one verdict",
        description="Decode a person who was not in the run's cohort with the run's primary "
        "analysis (by default its stored leave-one-subject-out models, none of which saw the "
        "person) and test the person against the cohort's held-out values in the verdict's "
        "fixed order; the verdict says what the test could have detected. The cohort's models "
        "are never changed; the assessment is a run of its own (its folder holds its files), "
        "copied to the study run's assessments/sub-XX/ as the person's current one. A person "
        "already assessed is shown, not assessed again, unless --force (the earlier run keeps "
        "its files). One assessment of a person against a run at a time.",
    )
    p.add_argument(
        "--run", required=True, help="the finished study (or train) run holding the cohort"
    )
    p.add_argument(
        "--subject", required=True, help="the new person's BIDS label (letters, digits), e.g. 09"
    )
    _add_store_options(p)
    p.add_argument(
        "--bids",
        default=None,
        help="add the person from this dataset to the cache first (with the cache's options)",
    )
    p.add_argument(
        "--annotations", default=None, help="the annotations the cache was built with (with --bids)"
    )
    _add_alpha_option(p)
    p.add_argument(
        "--device",
        default=None,
        choices=["auto", "cpu", "cuda"],
        help="where to train and decode (default: the run's setting)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="assess again a person already assessed against the run; the new assessment "
        "becomes the current one and the earlier run keeps its files (without it the earlier "
        "one is shown)",
    )
    p.add_argument(
        "--exploratory",
        action="store_true",
        help="also run the study's other designs (e.g. train the person's own single-subject "
        "model): reported apart, never part of the verdict",
    )
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)  # a queued assess run to fill
    p.add_argument("--json", action="store_true", help="print the assessment as JSON")
    p.set_defaults(func=cmd_assess)

    p = sub.add_parser(
        "predict", help="predict one person's volumes with a stored model (stored with the run)"
    )
    p.add_argument("--run", required=True, help="the run id holding the model")
    p.add_argument(
        "--model",
        required=True,
        help="the model, as <design>/<name>: single-subject/sub-01, cross-subject/all, loso/sub-02",
    )
    p.add_argument("--subject", required=True, help="subject label, e.g. 01")
    _add_store_options(p)
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to run (default: the GPU when there is one)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="volumes per batch (default: the largest that fits, halved on out-of-memory)",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="permutations for the chance level (default 1000)",
    )
    p.add_argument("--out", default=None, help="also write the prediction table here (TSV)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "bench",
        help="measure throughput (training, inference, data) against a baseline in the same run",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to measure (default: the GPU when there is one)",
    )
    p.add_argument(
        "--grid",
        default="22,29,8",
        help="input grid x,y,z (default 22,29,8; the real data: 132,175,48)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    _add_compile_option(p, "emocore's path")
    p.add_argument(
        "--volumes",
        type=int,
        default=None,
        help="volumes in the end-to-end cache (default 3599, one person; on the CPU at most 2 GiB)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="end-to-end training epochs; the first is warm-up (default 3)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="where the temporary end-to-end cache is written (default: the system temp folder)",
    )
    p.add_argument(
        "--no-data", action="store_true", help="skip the synth/prepare/cache-read figures"
    )
    p.add_argument("--no-model", action="store_true", help="skip the model-only figures")
    p.add_argument(
        "--no-e2e", action="store_true", help="skip the end-to-end figures from a warm cache"
    )
    p.add_argument(
        "--no-stats", action="store_true", help="skip the permutation-test figures (CPU)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("runs", help="list the runs in the registry (or show / delete one)")
    _add_store_options(p, cache=False)
    p.add_argument(
        "--kind",
        default=None,
        help="only runs of this kind (study, train, evaluate, predict, bench)",
    )
    p.add_argument("--status", default=None, help="only runs with this status")
    p.add_argument(
        "--show",
        metavar="RUN_ID",
        default=None,
        help="show one run in full, with its files and disk use (as text; as JSON with --json)",
    )
    p.add_argument(
        "--delete",
        metavar="RUN_ID",
        default=None,
        help="delete a run and its files (and the runs grouped under it)",
    )
    p.add_argument(
        "--forget",
        metavar="RUN_ID",
        default=None,
        help="remove a run from the registry only, deleting no file: for a run whose folder "
        "was deleted or moved, or whose record is damaged",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_runs)


# -- parser ------------------------------------------------------------------------------------
def _add_label_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lag",
        type=float,
        default=4.0,
        help="hemodynamic lag in seconds: volume i of run k is labelled at start_k + 2 i - lag (default 4; 0 = the poster's alignment)",
    )
    p.add_argument(
        "--recipe",
        default="poster",
        choices=["poster", "overlap"],
        help="label rule: 'poster' rebuilds the DeepEmotion labels exactly; 'overlap' is the cleaner Labs et al. voting rule (default poster)",
    )
    p.add_argument(
        "--observers",
        default=None,
        choices=["av9", "av8", "ao3"],
        help="observers of the overlap recipe (default av9: 5 of 9 audio-visual observers must agree)",
    )


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915
    parser = argparse.ArgumentParser(
        prog="emocore",
        description="Decode portrayed emotion from single fMRI volumes (studyforrest 7T audio movie) and inspect the errors honestly.",
        epilog=_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"emocore {__version__}")
    _add_output_options(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.set_defaults(func=cmd_synth)

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
    _add_label_options(p)
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
    _add_label_options(p)
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

    _add_model_commands(sub)
    for command in sub.choices.values():  # -v and -q also after the command (emocore train -q)
        _add_output_options(command, argparse.SUPPRESS)
    return parser


_EXIT_HELP = """exit codes:
  0    done
  2    usage: an unknown option or a missing argument
  3    config: an option has a value emocore cannot use
  4    data: a data file, the cache, a checkpoint or a run's files cannot be used (or the disk)
  5    registry: no such run, a run in the wrong state, or the registry cannot be written
  130  interrupted (Ctrl-C)"""


def _add_output_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """``-v`` (log what happens) and ``-q`` (no progress bar or lines) on ``parser``; after a
    command their default is SUPPRESS, so ``emocore -q train`` is not undone by the command."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log what happens (to stderr)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="no progress on stderr (errors are still printed)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except EmocoreError as exc:
        print(f"emocore {args.command}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:  # a disk or permission problem no command turned into its own words
        from emocore._io import os_error_message

        message = os_error_message(exc, "read or write a file")
        print(f"emocore {args.command}: error: {message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print(f"emocore {args.command}: interrupted", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
