"""Batches of volumes read ahead, for training and inference alike.

:func:`stream_batches` reads batches from a :class:`~emocore.data.dataset.VolumeSource` in
background threads (the memmap copies release the GIL), straight into page-locked host buffers
on CUDA, and hands them to the device with non-blocking copies, so reading batch ``i + 1``
overlaps computing batch ``i``. There is no per-volume Python work: a batch of one person in row
order is one slice copy.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from emocore.data.dataset import VolumeSource

__all__ = ["stream_batches", "DEFAULT_READERS"]

#: Threads reading ahead: one per core, at most 8.
DEFAULT_READERS = max(1, min(8, os.cpu_count() or 1))


def stream_batches(
    source: VolumeSource,
    batch_size: int,
    device: torch.device,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    shard: tuple[int, int] = (0, 1),
    prefetch: int = 3,
    readers: int = DEFAULT_READERS,
    pad_to_batch: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    """Yield ``(x, y, positions, n)`` with ``x`` float16 (b, 1, X, Y, Z) and ``y`` already on ``device``.

    Batches come in the order of :meth:`VolumeSource.batches` (same shuffling, same sharding), so
    training with and without read-ahead sees identical batches. Sources held in memory are read
    in the loop (an index_select costs less than a hand-off between threads). With
    ``pad_to_batch`` every ``x``
    has ``batch_size`` rows (the tail is zero-padded) and ``n`` says how many are real.
    """
    cuda = device.type == "cuda"
    plan = [
        idx
        for _, _, idx in source.batches(
            batch_size, shuffle=shuffle, generator=generator, shard=shard, positions_only=True
        )
    ]

    def read(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
        n = len(idx)
        rows = batch_size if pad_to_batch else n
        host = torch.empty((rows, *source.shape), dtype=torch.float16, pin_memory=cuda)
        source.gather_into(idx.numpy(), host[:n].numpy())
        if rows > n:
            host[n:].zero_()
        y = source.y[idx]
        return host, (y.pin_memory() if cuda else y), n, idx

    if prefetch == 0 or len(plan) <= 1 or source.preloaded:  # in-memory gathers need no help
        reads: Iterator = (read(idx) for idx in plan)
        yield from _hand_over(reads, device, lead=1)
        return
    with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="emocore-read") as pool:
        pending: deque[Future] = deque()
        it = iter(plan)
        for idx in it:
            pending.append(pool.submit(read, idx))
            if len(pending) > prefetch:
                break

        def in_order() -> Iterator:
            while pending:
                fut = pending.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(read, nxt))
                yield fut.result()

        try:
            yield from _hand_over(in_order(), device, lead=prefetch + 1)
        finally:
            for fut in pending:
                fut.cancel()


def _hand_over(reads: Iterator, device: torch.device, *, lead: int) -> Iterator:
    """Move host batches to ``device``; on CUDA overlap each copy with the previous batch's work.

    Copies run on a side stream and the compute stream waits for them by event. The loop never
    runs more than ``lead`` batches ahead of the GPU: without that bound the CPU could queue the
    whole person, and every page-locked buffer still in flight would be a fresh allocation.
    """
    if device.type != "cuda":
        for host, y, n, idx in reads:
            yield host.unsqueeze(1), y, idx, n
        return
    copy_stream = torch.cuda.Stream(device)
    computed: deque[torch.cuda.Event] = deque()

    def stage(host: torch.Tensor, y: torch.Tensor, n: int, idx: torch.Tensor):
        with torch.cuda.stream(copy_stream):
            x = host.to(device, non_blocking=True).unsqueeze(1)
            y = y.to(device, non_blocking=True)
        return x, y, idx, n, copy_stream.record_event()

    def release(staged):
        x, y, idx, n, ready = staged
        compute = torch.cuda.current_stream(device)
        compute.wait_event(ready)
        x.record_stream(compute)  # made on the copy stream, used on the compute stream
        y.record_stream(compute)
        return x, y, idx, n

    staged = None
    for item in reads:
        nxt = stage(*item)
        if staged is not None:
            yield release(staged)
            computed.append(torch.cuda.current_stream(device).record_event())
            if len(computed) > lead:
                computed.popleft().synchronize()
        staged = nxt
    if staged is not None:
        yield release(staged)
