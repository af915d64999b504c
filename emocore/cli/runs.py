"""`emocore runs`: list, show, delete or forget runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Commands import the library inside their functions: `emocore --help` and a mistyped option
# answer without loading torch, nibabel or pandas.
from emocore.cli.common import (
    add_store_options,
    megabytes,
    print_result,
)
from emocore.errors import ConfigError


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
        print_result(d, args.json, _run_text)
        return 0
    if args.delete:
        registry.delete_run(args.delete)
        print_result({"deleted": args.delete}, args.json, lambda r: f"deleted run {r['deleted']}")
        return 0
    if args.forget:
        gone = registry.folder_problem(args.forget) is not None
        folder = registry.run_dir(args.forget)
        registry.forget_run(args.forget)
        print_result(
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

    print_result(
        {"runs": rows, "disk_bytes": usage, "marked_failed": stale},
        args.json,
        lambda o: text(o["runs"]),
    )
    return 0


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
    parts = ", ".join(f"{k} {megabytes(v)}" for k, v in usage.items() if k != "total")
    if gone:
        lines.append(
            f"  disk        nothing ({megabytes(usage.get('total'))} recorded, now missing)"
        )
    else:
        lines.append(
            f"  disk        {megabytes(usage.get('total'))}" + (f" ({parts})" if parts else "")
        )
    for a in d.get("artifacts") or []:
        size = megabytes(a["bytes"]) if a.get("exists", True) else "missing"
        lines.append(f"    {a['kind']:<12}{a['name']:<36}{size:>10}  {a['path']}")
    lines.append("(--json prints everything, as JSON)")
    return "\n".join(lines)


def add_commands(sub: Any) -> None:
    """`emocore runs`."""
    p = sub.add_parser("runs", help="list the runs in the registry (or show / delete one)")
    add_store_options(p, cache=False)
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
