"""Seed statistics and test-set bootstrap for comparing classifiers on one shared test set.

Every model (a finetuned LM, a baseline) is a list of runs, one per seed, each a ``(n, n_classes)``
matrix of class probabilities over the same ``n`` test sequences in the same order. Bootstrap
replicates resample the test sequences: :func:`resample_counts` draws how often each sequence
appears in each replicate, and every model and seed is scored on the same replicates, so
differences between models are paired (the sequences that are hard for one model are drawn
together with its competitor's answers on them).

Metrics take these counts as weights: MCC from a weighted confusion matrix and AUROC from
weighted Mann-Whitney sums give exactly the metric of the resampled test set, for all replicates
at once. Binary tasks score AUROC on the probability of class 1 (as scikit-learn and genolm's
finetuning do), more classes a one-vs-rest macro average; MCC uses the arg-max class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from genolm.errors import GenolmError

METRICS = ("mcc", "auroc")
_CHUNK = 200  # bootstrap replicates scored at once (memory: _CHUNK x n floats per matrix)


def resample_counts(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` test sequences is drawn in each of ``n_boot`` bootstrap replicates.

    Returns:
        An ``(n_boot, n)`` integer array; each row sums to ``n``.

    """
    if n < 1 or n_boot < 1:
        raise GenolmError(f"bootstrap needs test sequences and replicates, got n={n}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    rows = np.repeat(np.arange(n_boot), n)
    return np.bincount(rows * n + draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def _rows(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Weights as a 2-D float array (one row of ones when ``None``)."""
    if weights is None:
        return np.ones((1, n))
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != n:
        raise GenolmError(f"weights cover {weights.shape[1]} sequences, the test set has {n}")
    return weights


def weighted_mcc(labels: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Matthews correlation of ``pred`` vs ``labels`` (any number of classes) per row of ``weights``.

    Returns:
        One MCC per weight row (0 where it is undefined, as scikit-learn).

    """
    labels, pred = np.asarray(labels), np.asarray(pred)
    w = _rows(weights, len(labels))
    classes = np.union1d(labels, pred)
    truth = (labels[:, None] == classes).astype(np.float64)
    guess = (pred[:, None] == classes).astype(np.float64)
    s, c = w.sum(1), w @ (labels == pred).astype(np.float64)
    t, p = w @ truth, w @ guess
    num = c * s - (t * p).sum(1)
    den = np.sqrt((s**2 - (p**2).sum(1)) * (s**2 - (t**2).sum(1)))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def weighted_auroc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Area under the ROC curve per row of ``weights`` (ties count one half; NaN without both classes)."""
    positive = np.asarray(positive, dtype=bool)
    w = _rows(weights, len(positive))
    uniq, inverse = np.unique(np.asarray(scores), return_inverse=True)
    group = sp.csr_matrix((np.ones(len(inverse)), (inverse, np.arange(len(inverse)))),
                          shape=(len(uniq), len(inverse)))
    pos = np.asarray(group @ (w * positive).T).T  # (rows, unique scores): positives at each score
    neg = np.asarray(group @ (w * ~positive).T).T
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(1)
    den = pos.sum(1) * neg.sum(1)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def score(metric: str, labels: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None
          ) -> np.ndarray:
    """``metric`` (``mcc`` or ``auroc``) of class probabilities ``(n, n_classes)`` per weight row.

    Replicates are scored in chunks of a few hundred, so memory stays at a few times ``n`` per row.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise GenolmError(f"probabilities of shape {probs.shape} do not match {len(labels)} labels")
    w = _rows(weights, len(labels))
    if len(w) > _CHUNK:
        chunks = range(0, len(w), _CHUNK)
        return np.concatenate([score(metric, labels, probs, w[i:i + _CHUNK]) for i in chunks])
    if metric == "mcc":
        return weighted_mcc(labels, probs.argmax(1), w)
    if metric == "auroc":
        if probs.shape[1] == 2:
            return weighted_auroc(labels == 1, probs[:, 1], w)
        return np.mean([weighted_auroc(labels == k, probs[:, k], w) for k in range(probs.shape[1])], axis=0)
    raise GenolmError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; NaN for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (NaN samples ignored)."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(np.asarray(samples, dtype=np.float64), [tail, 100 - tail])
    return float(lo), float(hi)


def seed_summary(metric: str, labels: np.ndarray, runs: Sequence[np.ndarray], counts: np.ndarray,
                 level: float = 0.95) -> dict[str, float]:
    """One model over its seeds: per-seed metric mean and sd, and a bootstrap CI of the seed mean.

    Args:
        metric: ``mcc`` or ``auroc``.
        labels: test labels.
        runs: class probabilities of each seed, rows aligned with ``labels``.
        counts: bootstrap counts (:func:`resample_counts`), shared by every model compared.
        level: confidence level.

    Returns:
        ``mean``, ``sd``, ``lo``, ``hi`` and ``seeds``.

    """
    per_seed = [float(score(metric, labels, run)[0]) for run in runs]
    mean, sd = mean_sd(per_seed)
    boot = np.mean([score(metric, labels, run, counts) for run in runs], axis=0)
    lo, hi = percentile_ci(boot, level)
    return {"mean": mean, "sd": sd, "lo": lo, "hi": hi, "seeds": len(runs)}


def paired_difference(metric: str, labels: np.ndarray, runs: dict[int, np.ndarray],
                      reference: dict[int, np.ndarray], counts: np.ndarray, level: float = 0.95
                      ) -> dict[str, float]:
    """Seed-mean ``metric`` of ``runs`` minus that of ``reference``, with a paired bootstrap CI.

    Seeds pair by key; a side with a single run (a deterministic baseline) pairs with every seed
    of the other. The CI resamples the test set with ``counts`` for both sides at once.

    Returns:
        ``diff`` (point estimate on the full test set), ``lo``, ``hi``, ``ahead`` (seeds in which
        ``runs`` scores higher than its paired reference run) and ``pairs``.

    Raises:
        GenolmError: no seed of ``runs`` has a reference run to pair with.

    """
    if len(reference) == 1:
        reference = dict.fromkeys(runs, next(iter(reference.values())))
    elif len(runs) == 1:
        runs = dict.fromkeys(reference, next(iter(runs.values())))
    seeds = sorted(set(runs) & set(reference))
    if not seeds:
        raise GenolmError(f"no common seed to pair: {sorted(runs)} vs {sorted(reference)}")
    mine = [float(score(metric, labels, runs[s])[0]) for s in seeds]
    theirs = [float(score(metric, labels, reference[s])[0]) for s in seeds]
    boot = np.mean([score(metric, labels, runs[s], counts) - score(metric, labels, reference[s], counts)
                    for s in seeds], axis=0)
    lo, hi = percentile_ci(boot, level)
    ahead = sum(a > b for a, b in zip(mine, theirs, strict=True))
    return {"diff": float(np.mean(mine) - np.mean(theirs)), "lo": lo, "hi": hi, "ahead": ahead,
            "pairs": len(seeds)}
