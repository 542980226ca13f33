"""An order-keeping, memory-bounded parallel map over processes, for data preparation.

``concurrent.futures``' own ``map`` submits every item before yielding the first result, so a
3 Gb genome streamed as blocks would sit in memory whole. :func:`ordered_map` keeps at most
``window`` items in flight and yields results in input order, so the output of a parallel run is
byte for byte that of a serial one.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
#: Upper bound of the automatic worker count (the reading process feeds them alone).
MAX_AUTO_WORKERS = 8


def resolve_workers(workers: int | None) -> int:
    """``workers`` if given (at least 1), else this process's CPUs up to :data:`MAX_AUTO_WORKERS`."""
    if workers is not None:
        return max(1, int(workers))
    return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0))))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                window: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` on worker processes, in order, with at most ``window`` items in flight.

    Runs in this process when ``workers`` resolves to 1 or ``items`` holds a single item (no pool
    to start). Workers are forked where the platform can (as torch's DataLoader workers are), so
    a script or notebook calling this needs no ``if __name__ == "__main__"`` guard; ``fn`` should
    not use threads its caller started (data preparation uses none). An exception raised by
    ``fn`` is raised here, and the items not yet started are cancelled.

    Args:
        fn: the work on one item.
        items: consumed lazily, at most ``window`` ahead of the results yielded.
        workers: worker processes (``None``: :func:`resolve_workers`).
        window: items in flight (default ``2 * workers``).

    """
    workers = resolve_workers(workers)
    it = iter(items)
    head = list(itertools.islice(it, 2))
    if workers == 1 or len(head) < 2:
        yield from map(fn, itertools.chain(head, it))
        return
    window = window or 2 * workers
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    pending: deque[Future] = deque()
    try:
        for item in itertools.chain(head, it):
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
