"""Independent batches side by side on CPU threads (inter-op parallelism).

A small model's forward pass over one batch is a few hundred short kernels, many too small for
torch's intra-op threads to split well, plus Python between them; with one batch per thread
and one intra-op thread each, the cores stay busy (measured in experiments/benchmarks/RESULTS.md).
Kernels release the GIL, so threads suffice and the weights are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


MAX_DEFAULT_WORKERS = 8  # the Python between kernels holds the GIL; more threads would queue on it


def cpu_workers(device: torch.device, workers: int | None) -> int:
    """Threads to run batches on.

    1 on GPUs; on CPU ``workers`` if given, else torch's intra-op thread count up to
    :data:`MAX_DEFAULT_WORKERS` (the gain was measured on 2 cores only).
    """
    if device.type != "cpu":
        return 1
    if workers is None:
        workers = min(torch.get_num_threads(), MAX_DEFAULT_WORKERS)
    return max(1, workers)


def map_batches(fn: Callable[[T], R], batches: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(batch)`` for every batch, in order; with ``workers > 1`` on that many threads.

    Each worker thread gets an equal share of torch's intra-op threads (at least one). The
    caller's thread setting is restored afterwards (``torch.set_num_threads`` in a worker also
    changes the default that new threads start from). An exception in ``fn`` cancels the
    batches not yet started and is raised here.
    """
    if workers <= 1:
        yield from map(fn, batches)
        return
    total = torch.get_num_threads()
    share = max(1, total // workers)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="genolm-batch",
                              initializer=torch.set_num_threads, initargs=(share,))
    try:
        yield from pool.map(fn, batches)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(total)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """The intra-op thread count of torch set to ``n`` for a block (None: unchanged), restored afterwards.

    The setting is torch's process-wide one, so the block should be the only torch work running.
    """
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
