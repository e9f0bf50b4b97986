"""The one process pool of the project: an ordered map over files, serial for small jobs.

Used by the demo synthesiser and by prepare's decoding. Workers are spawned,
not forked (the parent may already hold torch/OpenMP threads, which fork does
not copy safely), and each runs torch single-threaded: the workers are the
parallelism, and results must not depend on how many threads a kernel used.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import sys

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items a pool costs more (spawning, importing torch) than it saves.
MIN_ITEMS_FOR_WORKERS = 64


def _single_threaded_worker() -> None:
    import torch  # here, not at the top: numpy-only callers (the demo cohort) never load torch

    torch.set_num_threads(1)


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """The serial path computes exactly as a worker does, then restores the caller's threads.
    A caller that has not loaded torch (its function's module imports it at the top when it
    uses it) has no torch threads to set."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def ordered_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    num_workers: int,
    chunksize: int | None = None,
    min_items: int = MIN_ITEMS_FOR_WORKERS,
) -> Iterator[Result]:
    """function(item) for every item, yielded in item order.

    Runs in `num_workers` spawned processes when num_workers > 0 and there are
    at least `min_items` items, else in this process. The results are the same
    either way. A worker that dies raises concurrent.futures.process.BrokenProcessPool
    from the iterator; the caller knows from how many results it already got
    which item was in flight.
    """
    items = list(items)
    if num_workers <= 0 or len(items) < min_items:
        with single_threaded_torch():
            for item in items:
                yield function(item)
        return
    chunksize = chunksize or max(1, min(32, len(items) // (num_workers * 8)))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        yield from pool.map(function, items, chunksize=chunksize)
