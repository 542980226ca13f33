"""Seeded uniform samples of lines from a large text file (one chunk per line).

:func:`sample_lines` draws exactly ``k`` lines uniformly at random from a file of any length in
one streaming pass (reservoir sampling, Li's "Algorithm L") and returns them in file order. Only
the ``k`` sampled lines are held in memory; the random draws depend on the seed and the line
count alone, so a sample is reproducible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from genolm.errors import GenolmError

#: Name of the sampling method, recorded in cache keys so a change of method is a new key.
SAMPLING_METHOD = "reservoir-L"


def _unit(rng: np.random.Generator) -> float:
    """A uniform draw in (0, 1] (never 0, so its logarithm is finite)."""
    return 1.0 - rng.random()


def _reservoir(items: Iterable[str], k: int, rng: np.random.Generator) -> list[tuple[int, str]]:
    """Algorithm L: a uniform ``k``-subset of ``items`` as ``(index, item)`` pairs, unordered."""
    it = iter(items)
    reservoir = list(enumerate(itertools.islice(it, k)))
    if len(reservoir) < k:
        return reservoir
    index = k - 1
    w = math.exp(math.log(_unit(rng)) / k)
    while True:
        # skip a geometric number of items, then the next one replaces a random slot
        skip = math.floor(math.log(_unit(rng)) / math.log1p(-w)) if w < 1.0 else 0
        item = next(itertools.islice(it, skip, None), None)
        if item is None:
            return reservoir
        index += skip + 1
        reservoir[int(rng.integers(k))] = (index, item)
        w *= math.exp(math.log(_unit(rng)) / k)


def _read(path: Path, k: int | None, seed: int) -> Iterator[str]:
    with open(path) as handle:
        lines = (line.rstrip("\n") for line in handle)
        if k is None:
            yield from lines
            return
        sample = _reservoir(lines, k, np.random.default_rng(seed))
    for _, line in sorted(sample):
        yield line


def sample_lines(path: str | Path, k: int | None, seed: int = 0) -> Iterator[str]:
    """Iterate over a seeded uniform sample of ``k`` lines of ``path``, in file order.

    The file is read once, lazily, at the first item; lines come without their newline.

    Args:
        path: text file, one item per line.
        k: sample size; ``None`` (or at least the number of lines) yields every line.
        seed: seed of the sample; the same seed and file give the same lines.

    Raises:
        GenolmError: ``k`` is smaller than 1.

    """
    if k is not None and k < 1:
        raise GenolmError(f"sample size must be >= 1 or null, got {k}")
    return _read(Path(path), k, seed)
