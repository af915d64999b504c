"""`emocore`: the parser and the entry point; each command group lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from emocore import __version__
from emocore._io import os_error_message
from emocore.cli import bench, data, models, runs
from emocore.cli.common import add_output_options
from emocore.errors import EmocoreError, exit_code

_EXIT_HELP = """exit codes:
  0    done
  2    usage: an unknown option or a missing argument
  3    config: an option has a value emocore cannot use
  4    data: a data file, the cache, a checkpoint or a run's files cannot be used (or the disk)
  5    registry: no such run, a run in the wrong state, or the registry cannot be written
  130  interrupted (Ctrl-C)"""


def build_parser() -> argparse.ArgumentParser:
    """The `emocore` command line: every command, each with -v/-q after it too."""
    parser = argparse.ArgumentParser(
        prog="emocore",
        description="Decode portrayed emotion from single fMRI volumes (studyforrest 7T audio movie) and inspect the errors honestly.",
        epilog=_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"emocore {__version__}")
    add_output_options(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, models, bench, runs):
        group.add_commands(sub)
    for command in sub.choices.values():  # -v and -q also after the command (emocore train -q)
        add_output_options(command, argparse.SUPPRESS)
    return parser


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
        message = os_error_message(exc, "read or write a file")
        print(f"emocore {args.command}: error: {message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print(f"emocore {args.command}: interrupted", file=sys.stderr)
        return exit_code(exc)
