"""Select labelled volumes from a cache and feed them to a model in batches.

``select`` returns a metadata table (one row per volume: subject, run, volume, movie_time, label,
scene, ... and ``y``, the class index); ``VolumeSource`` turns such a table into batches of tensors.
Batches are gathered with one fancy-indexing read per subject, never per-volume Python work: small
selections (the demo, one person at a reduced grid) are held in memory as float16, large ones
stream from the memory-mapped cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, overload

import numpy as np
import pandas as pd
import torch

from emocore.constants import CLASSES, EMOTIONS
from emocore.data.cache import VolumeCache
from emocore.errors import ConfigError

__all__ = ["select", "VolumeSource"]


def select(
    cache: VolumeCache,
    *,
    subjects: Sequence[str] | None = None,
    runs: Sequence[int] | None = None,
    classes: Sequence[str] = EMOTIONS,
) -> pd.DataFrame:
    """Volumes of ``subjects`` and ``runs`` whose label is one of ``classes``.

    The column ``y`` holds the class index into ``classes``. The default drops NONE (the poster's
    5 classes); pass ``classes=CLASSES`` to keep it as a sixth class. Volumes of runs that
    prepare found blank (every voxel constant: no signal, zeros in the cache) are left out, so
    neither training nor any accuracy counts them; prepare's warning names those runs.
    """
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or len(classes) < 2:
        raise ConfigError(f"classes must be at least two of {CLASSES}; got {list(classes)}")
    table = cache.table(subjects)
    if runs is not None:
        table = table[table["run"].isin(list(runs))]
    blank = [
        (subject, span.run)
        for subject in table["subject"].unique()
        for span in cache.runs(subject)
        if span.blank
    ]
    if blank:
        keys = pd.MultiIndex.from_frame(table[["subject", "run"]])
        table = table[~keys.isin(blank)]
    table = table[table["label"].isin(list(classes))].reset_index(drop=True)
    table["y"] = table["label"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    return table


class VolumeSource:
    """Batches of (volumes, class indices) for the rows of ``meta``.

    Parameters
    ----------
    cache
        The opened cache.
    meta
        Rows from :func:`select` (needs ``subject``, ``row`` and ``y``).
    preload
        Hold the selected volumes in memory as float16. ``None`` decides by size
        (up to ``preload_limit_bytes``).
    """

    def __init__(
        self,
        cache: VolumeCache,
        meta: pd.DataFrame,
        *,
        preload: bool | None = None,
        preload_limit_bytes: int = 3 * 2**30,
    ) -> None:
        self.cache = cache
        self.meta = meta.reset_index(drop=True)
        self.shape = cache.grid_shape
        self.y = torch.tensor(self.meta["y"].to_numpy(dtype=np.int64, copy=True))
        nbytes = len(self.meta) * int(np.prod(self.shape)) * 2
        self.preloaded = nbytes <= preload_limit_bytes if preload is None else preload
        self._subjects = self.meta["subject"].to_numpy()
        self._rows = self.meta["row"].to_numpy(dtype=np.int64)
        self._x: torch.Tensor | None = None
        if self.preloaded:
            self._x = torch.from_numpy(self._gather(np.arange(len(self.meta))))

    def __len__(self) -> int:
        return len(self.meta)

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.shape), dtype=np.float16)
        self.gather_into(idx, out)
        return out

    def gather_into(self, idx: np.ndarray, out: np.ndarray) -> None:
        """Copy the float16 volumes at positions ``idx`` of ``meta`` into ``out`` (n, x, y, z).

        One person's rows in ascending order (whole-subject inference) are copied as a single
        slice or ``np.take`` straight into ``out``; mixed batches are gathered per person. Either
        way the copy runs in numpy without the GIL, so several threads can read at once.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if self._x is not None:
            torch.index_select(self._x, 0, torch.from_numpy(idx), out=torch.from_numpy(out))
            return
        subj = self._subjects[idx]
        rows = self._rows[idx]
        if len(idx) and (subj[0] == subj).all() and (np.diff(rows) > 0).all():
            arr = self.cache.array(str(subj[0]))
            if rows[-1] - rows[0] + 1 == len(rows):
                out[...] = arr[rows[0] : rows[-1] + 1]
            else:
                np.take(arr, rows, axis=0, out=out)
            return
        for s in np.unique(subj):
            where = np.flatnonzero(subj == s)
            out[where] = self.cache.read(str(s), rows[where])

    def volumes(self, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        """float16 volumes (n, x, y, z) for positions ``idx`` of ``meta``."""
        if self._x is not None:
            return self._x[torch.as_tensor(idx, dtype=torch.long)]
        return torch.from_numpy(self._gather(np.asarray(idx)))

    @overload
    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = ...,
        generator: torch.Generator | None = ...,
        shard: tuple[int, int] = ...,
        positions_only: Literal[False] = ...,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]: ...

    @overload
    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = ...,
        generator: torch.Generator | None = ...,
        shard: tuple[int, int] = ...,
        positions_only: Literal[True],
    ) -> Iterator[tuple[None, torch.Tensor, torch.Tensor]]: ...

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        shard: tuple[int, int] = (0, 1),
        positions_only: bool = False,
    ) -> Iterator[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        """Yield (float16 volumes (b, x, y, z), labels (b,), positions (b,)); the caller moves them to its device.

        ``shard=(rank, world)`` splits every batch across the processes of a distributed run
        (rank r takes positions r, r + world, ...); with the same generator state on every rank
        the processes together see exactly the batches of a single-process run. With
        ``positions_only`` no volume is read and the first item is None (the batch plan for
        :func:`emocore.data.stream.stream_batches`, which reads ahead in threads).
        """
        rank, world = shard
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for a in range(0, n, batch_size):
            batch = order[a : a + batch_size]
            if len(batch) < world:  # a rank with no volume would stall the others: skip the tail
                break
            idx = batch[rank::world]
            yield (None if positions_only else self.volumes(idx)), self.y[idx], idx
