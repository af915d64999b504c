"""The ``emocore`` command: parses options, calls the library, prints. No logic of its own.

One module per command group (data, models, runs, bench); common.py holds what they share."""

from emocore.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
