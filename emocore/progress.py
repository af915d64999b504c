"""The one progress type of emocore's long calls, and a helper to nest them.

Every long call (``prepare``, ``generate_cohort``, training, a study, inference, an assessment)
takes ``progress(fraction, message)``: ``fraction`` of the whole call done, from 0 to 1, and a
short sentence of what it is doing. The CLI draws it as a bar or log lines, the dashboard as a
progress bar, a background job writes it to the registry.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "EpochHook", "ProgressBar", "monotone", "part"]

#: ``progress(fraction, message)``: how far a long call is, and what it is doing.
Progress = Callable[[float, str], None]

#: Called with each epoch's record (epoch, losses, accuracies, seconds) as training goes.
EpochHook = Callable[[dict[str, Any]], None]


def part(progress: Progress | None, start: float, stop: float, prefix: str = "") -> Progress:
    """A progress callback for one step of a longer call: its 0..1 is mapped onto
    ``start..stop`` of ``progress`` and its messages get ``prefix`` (nothing happens without
    ``progress``)."""

    def inner(fraction: float, message: str) -> None:
        if progress is not None:
            text = f"{prefix}: {message}" if prefix and message else prefix or message
            progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), text)

    return inner


def monotone(progress: Progress | None) -> Progress | None:
    """``progress`` that never goes back: a fraction below the highest one so far is passed on
    as that highest one (its message still shows), and every fraction is kept within 0..1.

    A call made of steps that each report their own 0..1 can step back when one step's share
    is overrun (``run_study`` reports a design's training up to its whole share, then its
    linear baseline at 97 % of it): a bar must not."""
    if progress is None:
        return None
    highest = 0.0

    def inner(fraction: float, message: str) -> None:
        nonlocal highest
        highest = max(highest, min(max(float(fraction), 0.0), 1.0))
        progress(highest, message)

    return inner


class ProgressBar:
    """Progress on stderr: a one-line bar on a terminal; elsewhere (a log file, a Slurm job) one
    plain line whenever the step changes, at most every 2 s; silent with --json."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._step = ""

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty:
            step = ":".join(message.split(":")[:2])  # e.g. "<fold>: epoch 2/3"
            if fraction >= 1 or (step != self._step and now - self._last >= 2.0):
                self._last, self._step = now, step
                sys.stderr.write(f"{self.label} {100 * fraction:5.1f}% {message}\n")
                sys.stderr.flush()
            return
        if fraction < 1 and now - self._last < 0.1:
            return
        self._last = now
        n = int(30 * min(max(fraction, 0.0), 1.0))
        sys.stderr.write(
            f"\r{self.label} [{'#' * n}{' ' * (30 - n)}] {100 * fraction:5.1f}% {message[:60]:<60}"
        )
        if fraction >= 1:
            sys.stderr.write("\n")
        sys.stderr.flush()
