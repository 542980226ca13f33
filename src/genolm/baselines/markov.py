"""Order-k Markov chains over A, C, G, T: the count-table baseline of every DNA language model.

:class:`MarkovChains` fits the tables of every order ``0..max_order`` in one pass over the
training windows (contexts never cross a window's start or an N) and scores held-out windows
the same way: base ``i`` of a window is predicted from the ``min(k, i)`` bases before it (fewer
after an N), so the first bases of a window are scored with the context they have. Smoothing is
add-alpha over the four bases. N and other letters are not scored and break the context.

Kept as our own code: a chain is a few ``numpy.bincount`` calls over base-4 context codes, and
no well-kept library scores windows with truncated contexts the way an LM sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from genolm.errors import GenolmError

_CODE = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate("ACGT"):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i


def encode(seq: str) -> np.ndarray:
    """Bases as 0-3 (A C G T, either case); every other letter is -1."""
    return _CODE[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def _joined(windows: Iterable[str], batch_bases: int = 1 << 20) -> Iterator[str]:
    """Windows joined by ``N`` (which breaks every context) in strings of about ``batch_bases``."""
    batch, size = [], 0
    for seq in windows:
        batch.append(seq)
        size += len(seq) + 1
        if size >= batch_bases:
            yield "N".join(batch)
            batch, size = [], 0
    if batch:
        yield "N".join(batch)


def _contexts(codes: np.ndarray, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position: the longest usable context length (<= max_order) and the base-4 context code.

    ``code[k, i]`` is the code of the ``k`` bases before ``i`` (most recent base lowest);
    ``avail[i]`` counts the valid bases directly before ``i``, capped at ``max_order``.
    """
    n = len(codes)
    avail = np.zeros(n, dtype=np.int64)
    code = np.zeros((max_order + 1, n), dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for k in range(1, max_order + 1):
        prev = np.full(n, -1, dtype=np.int64)
        prev[k:] = codes[:-k] if k < n else prev[k:]
        alive &= prev >= 0
        avail += alive
        code[k] = code[k - 1] + np.where(alive, prev, 0) * 4 ** (k - 1)
    return avail, code


class MarkovChains:
    """Order-0..``max_order`` Markov chains with add-``alpha`` smoothing.

    Args:
        max_order: highest order fitted (4^(max_order+1) counts; 10 -> 4 M counts).
        alpha: pseudo-count added to each of the four bases of every context.

    """

    def __init__(self, max_order: int = 10, alpha: float = 1.0) -> None:
        if not 0 <= max_order <= 12:
            raise GenolmError(f"Markov baseline: max_order must be in 0..12, got {max_order}")
        if alpha <= 0:
            raise GenolmError(f"Markov baseline: alpha must be > 0, got {alpha}")
        self.max_order, self.alpha = max_order, alpha
        self.counts = [np.zeros(4 ** (k + 1), dtype=np.int64) for k in range(max_order + 1)]
        self.bases_fitted = 0

    def fit(self, windows: Iterable[str]) -> MarkovChains:
        """Add the counts of every window (each scored from its own start; contexts stop at N)."""
        for seq in _joined(windows):
            codes = encode(seq)
            avail, code = _contexts(codes, self.max_order)
            ok = codes >= 0
            self.bases_fitted += int(ok.sum())
            for k in range(self.max_order + 1):
                keep = ok & (avail >= k)
                self.counts[k] += np.bincount(code[k][keep] * 4 + codes[keep],
                                              minlength=4 ** (k + 1))
        return self

    def log2_probs(self, seq: str, order: int) -> np.ndarray:
        """log2 P(base_i | up to ``order`` preceding bases) for each scored base (N skipped)."""
        if not 0 <= order <= self.max_order:
            raise GenolmError(f"Markov baseline: order {order} not fitted (max {self.max_order})")
        codes = encode(seq)
        avail, code = _contexts(codes, order)
        ok = np.flatnonzero(codes >= 0)
        k = np.minimum(avail[ok], order)
        out = np.empty(len(ok))
        for j in np.unique(k):
            rows = ok[k == j]
            table = self.counts[j].reshape(-1, 4)
            ctx = code[j][rows]
            hits = table[ctx, codes[rows]] + self.alpha
            totals = table[ctx].sum(axis=1) + 4 * self.alpha
            out[k == j] = np.log2(hits / totals)
        return out

    def bits_per_base(self, windows: Sequence[str], orders: Sequence[int] | None = None
                      ) -> dict[int, float]:
        """Mean -log2 P per scored base over all windows, for each order."""
        orders = list(range(self.max_order + 1)) if orders is None else list(orders)
        if self.bases_fitted == 0:
            raise GenolmError("Markov baseline: fitted on no A/C/G/T base")
        bits = dict.fromkeys(orders, 0.0)
        n = 0
        for seq in _joined(windows):
            for order in orders:
                lp = self.log2_probs(seq, order)
                bits[order] -= float(lp.sum())
            n += int((encode(seq) >= 0).sum())
        if n == 0:
            raise GenolmError("Markov baseline: no A/C/G/T base to score")
        return {order: total / n for order, total in bits.items()}
