"""Is generated DNA realistic? k-mer spectra, GC content, baselines and novelty.

- :func:`kmer_spectrum` / :func:`jsd`: Jensen-Shannon divergence (bits) of k-mer frequency spectra.
- :class:`MarkovChain`: k-th order Markov baseline fit on training DNA; :func:`iid_sequences`.
- :class:`NoveltyIndex`: longest exact match of a query against a corpus (both strands): one sorted
  table of 2-bit-packed 31-mers answers "does this k-mer occur?" for any k <= 31 as a prefix range
  query, and a binary search on k finds the longest match; no quadratic scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genolm.data.sequences import BASES, encode_dna, gc_fraction, reverse_complement


def kmer_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Integer code of every k-mer (k <= 31) that holds only ACGT."""
    if len(codes) < k:
        return np.zeros(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    valid = (windows != 255).all(1)
    weights = (np.uint64(4) ** np.arange(k - 1, -1, -1, dtype=np.uint64))
    return (windows[valid].astype(np.uint64) * weights).sum(1, dtype=np.uint64)


def kmer_spectrum(seqs: Iterable[str], k: int) -> np.ndarray:
    """Frequencies (summing to 1) of all 4**k k-mers over ``seqs``."""
    counts = np.zeros(4**k, dtype=np.float64)
    for seq in seqs:
        np.add.at(counts, kmer_codes(encode_dna(seq), k).astype(np.int64), 1)
    total = counts.sum()
    return counts / total if total else counts


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def gc_content(seqs: Iterable[str]) -> np.ndarray:
    """GC share of each sequence."""
    return np.array([gc_fraction(s) for s in seqs])


def iid_sequences(n: int, length: int, gc: float, seed: int) -> list[str]:
    """Independent bases with P(G) = P(C) = gc/2 and P(A) = P(T) = (1-gc)/2."""
    rng = np.random.default_rng(seed)
    probs = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    draws = rng.choice(4, size=(n, length), p=probs)
    return ["".join(BASES[c] for c in row) for row in draws]


class MarkovChain:
    """k-th order Markov chain over ACGT with add-one smoothing."""

    def __init__(self, order: int = 3) -> None:
        self.order = order
        self.counts = np.zeros((4**order, 4), dtype=np.float64)

    def fit(self, seqs: Iterable[str]) -> MarkovChain:
        """Count (order+1)-mers: context -> next base."""
        for seq in seqs:
            codes = kmer_codes(encode_dna(seq), self.order + 1).astype(np.int64)
            np.add.at(self.counts, (codes // 4, codes % 4), 1)
        return self

    @property
    def transitions(self) -> np.ndarray:
        """P(next base | context), rows indexed by the context's k-mer code."""
        smoothed = self.counts + 1
        return smoothed / smoothed.sum(1, keepdims=True)

    def sample(self, n: int, length: int, seed: int) -> list[str]:
        """``n`` sequences; the first ``order`` bases follow the fitted k-mer frequencies."""
        rng = np.random.default_rng(seed)
        probs, k = self.transitions, self.order
        start = self.counts.sum(1) + 1
        out = np.zeros((n, length), dtype=np.int64)
        context = rng.choice(4**k, size=n, p=start / start.sum())
        for j in range(k):
            out[:, j] = (context // 4 ** (k - 1 - j)) % 4
        cum = probs.cumsum(1)
        for j in range(k, length):
            nxt = (rng.random(n)[:, None] > cum[context]).sum(1).clip(max=3)
            out[:, j] = nxt
            context = (context * 4 + nxt) % (4**k)
        return ["".join(BASES[c] for c in row) for row in out]


class NoveltyIndex:
    """Longest exact match of query sequences against a corpus (both strands)."""

    MAX_EXACT = 31

    def __init__(self, corpus: Sequence[str]) -> None:
        records = [s.upper() for s in corpus]
        records += [reverse_complement(s) for s in records]
        self.text = "\n".join(records)
        k = self.MAX_EXACT
        # k-mers within the last 30 bases of a record start no 31-mer and are not indexed
        self.table = np.unique(np.concatenate([kmer_codes(encode_dna(s), k) for s in records]))

    def _present(self, query: str, k: int) -> np.ndarray:
        """For each start in ``query`` (ACGT-only windows), whether its k-mer (k <= 31) occurs."""
        codes = kmer_codes(encode_dna(query), k)
        shift = np.uint64(2 * (self.MAX_EXACT - k))
        low, high = codes << shift, (codes + np.uint64(1)) << shift
        pos = np.searchsorted(self.table, low)
        found = pos < len(self.table)
        hits = np.zeros(len(codes), dtype=bool)
        hits[found] = self.table[pos[found]] < high[found]
        return hits

    def _has(self, query: str, k: int) -> bool:
        if k <= self.MAX_EXACT:
            return bool(self._present(query, k).any())
        # beyond 31 bases: exact substring tests, only where the first and last 31-mers occur
        starts = self._present(query, self.MAX_EXACT)
        span = k - self.MAX_EXACT
        return any(query[i : i + k] in self.text for i in range(len(query) - k + 1)
                   if starts[i] and starts[i + span])

    def longest_match(self, query: str) -> int:
        """Length of the longest substring of ``query`` found in the corpus."""
        query = query.upper()
        lo = self._search(query, 0, min(len(query), self.MAX_EXACT))
        if lo == self.MAX_EXACT:  # a 31-mer matches: search longer matches by substring tests
            lo = self._search(query, lo, len(query))
        return lo

    def _search(self, query: str, lo: int, hi: int) -> int:
        """Largest k in [lo, hi] with a match, given one of length ``lo`` (monotone in k)."""
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._has(query, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo
