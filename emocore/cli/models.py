"""The model commands: study, train, evaluate, assess and predict."""

from __future__ import annotations

import argparse
from typing import Any

from emocore._io import check_writable

# Commands import the library inside their functions: `emocore --help` and a mistyped option
# answer without loading torch, nibabel or pandas.
from emocore.cli.common import (
    add_alpha_option,
    add_compile_option,
    add_store_options,
    print_result,
    show_progress,
)
from emocore.errors import ConfigError
from emocore.progress import ProgressBar


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


def study_config_from_args(args: argparse.Namespace, designs: tuple[str, ...]):
    """The StudyConfig that `study`/`train` options describe, for ``designs``."""
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
    bar = ProgressBar(kind, show_progress(args) and rank == 0)
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
        config = study_config_from_args(args, designs)
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
    study = done.study_record
    result = {
        "run_id": done.run_id,
        "bundle": str(done.folder),
        "results": study.results,
        "seconds": study.seconds,
        "train_volumes_per_s": study.train_volumes_per_s,
        "peak_gpu_memory_gib": study.peak_gpu_memory_gib,
        "saliency_auc": {
            d: {m: {e: v["auc_vs_truth"] for e, v in maps.items()} for m, maps in models.items()}
            for d, models in study.saliency.items()
        },
        "embeddings": study.embeddings,
        "alpha": study.alpha,
        "primary": study.primary,
        "verdicts": study.verdicts or [],
        "atypical": study.atypical or [],
        "tuning": study.tuning,
        "saliency_checks": study.saliency_checks,
    }
    print_result(
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

    print_result(out, args.json, text)
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
        progress=ProgressBar("assess", show_progress(args)),
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

    print_result(result, args.json, text)
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
    bar = ProgressBar("predict", show_progress(args))
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
    print_result(result, args.json, lambda r: _predict_text(r, held_out))
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


def _add_train_options(p: argparse.ArgumentParser) -> None:
    add_store_options(p)
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
    add_compile_option(p, "the training model")
    p.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="circular-shift permutations for chance and p-values (default 1000)",
    )
    add_alpha_option(p)
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
    _add_step_options(p)


def _add_step_options(p: argparse.ArgumentParser) -> None:
    """The study's optional steps (final model, baseline, saliency) and --json."""
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


def add_commands(sub: Any) -> None:
    """`study`, `train`, `evaluate`, `assess` and `predict`."""
    _add_study_and_train(sub)
    _add_evaluate(sub)
    _add_assess(sub)
    _add_predict(sub)


def _add_study_and_train(sub: Any) -> None:
    """`emocore study` and `emocore train`."""
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


def _add_evaluate(sub: Any) -> None:
    """`emocore evaluate`."""
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
    add_store_options(p, cache=False)
    p.add_argument(
        "--permutations", type=int, default=1000, help="circular-shift permutations (default 1000)"
    )
    p.add_argument(
        "--linear", action="store_true", help="evaluate the linear baseline instead of the CNN"
    )
    add_alpha_option(p)
    p.add_argument(
        "--seed", type=int, default=0, help="random seed of the permutations (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    p.set_defaults(func=cmd_evaluate)


def _add_assess(sub: Any) -> None:
    """`emocore assess`."""
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
    add_store_options(p)
    p.add_argument(
        "--bids",
        default=None,
        help="add the person from this dataset to the cache first (with the cache's options)",
    )
    p.add_argument(
        "--annotations", default=None, help="the annotations the cache was built with (with --bids)"
    )
    add_alpha_option(p)
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


def _add_predict(sub: Any) -> None:
    """`emocore predict`."""
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
    add_store_options(p)
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
