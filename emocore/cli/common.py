"""What every command shares: the demo folder, printing as text or JSON, and the options
several commands take (--cache/--registry, --compile, --alpha, the label options, -v/-q)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emocore._io import json_safe

logger = logging.getLogger("emocore")

DEMO_DIR = Path(os.environ.get("EMOCORE_HOME", "emocore-data"))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress goes to stderr unless --json or -q/--quiet was given."""
    return not getattr(args, "json", False) and not getattr(args, "quiet", False)


def to_json(obj: Any) -> str:
    """Strict JSON: missing values (None, NaN, infinity) are null; other types as their text."""
    return json.dumps(json_safe(obj), indent=1, default=str, allow_nan=False)


def print_result(obj: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json:
        print(to_json(obj))
    else:
        print(text(obj) if text else obj)


def counts_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return (
        "\n".join(f"  {k:<10} {v:>6}" for k, v in counts.items()) + f"\n  {'total':<10} {total:>6}"
    )


def megabytes(n: Any) -> str:
    """A byte count as megabytes, one decimal."""
    return f"{(n or 0) / 2**20:.1f} MB"


def add_compile_option(p: argparse.ArgumentParser, what: str) -> None:
    # the values of emocore.models.engine.COMPILE_CHOICES, written out: the parser must not import torch
    p.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help=f"torch.compile {what}: auto = on CUDA when Triton is installed; "
        "falls back to eager if compiling fails (default auto)",
    )


def add_store_options(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
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


def _alpha(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1); {text} was given")
    return value


def add_alpha_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--alpha",
        type=_alpha,
        default=0.05,
        help="level of every verdict: the chance that a typical person is flagged for anything "
        "is at most this (default 0.05)",
    )


def add_label_options(p: argparse.ArgumentParser) -> None:
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


def add_output_options(parser: argparse.ArgumentParser, default: Any) -> None:
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
