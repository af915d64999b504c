"""`emocore bench`: throughput against a baseline measured in the same run."""

from __future__ import annotations

import argparse
from typing import Any

# Commands import the library inside their functions: `emocore --help` and a mistyped option
# answer without loading torch, nibabel or pandas.
from emocore.cli.common import (
    add_compile_option,
    print_result,
)
from emocore.errors import ConfigError


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

    print_result(result, args.json, text)
    return 0


def add_commands(sub: Any) -> None:
    """`emocore bench`."""
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
    add_compile_option(p, "emocore's path")
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
