"""A linear probe on frozen embeddings: how much of a task a backbone's vectors already hold.

:func:`fit_probe` standardises each embedding column on the training set and fits an L2 logistic
regression for each inverse regularisation ``C`` of a small grid, keeping the best by dev MCC;
:func:`evaluate` reports MCC, AUROC, accuracy and macro F1 on a test set. The probe of two
backbones on the same cached embeddings (``genolm-embed task=...``) compares them in seconds,
beside the k-mer baseline (:mod:`genolm.baselines.kmer`) that uses the same solver and metrics.

Built from scikit-learn (``StandardScaler``, ``LogisticRegression``, ``sklearn.metrics`` through
:func:`genolm.baselines.kmer.classification_scores`), like the k-mer baseline: the probe is meant
to be the standard one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import matthews_corrcoef
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from genolm.baselines.kmer import MAX_ITER, classification_scores
from genolm.errors import GenolmError

CS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _check(x: np.ndarray, y: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as a finite 2-D float array and labels as a 1-D array of the same length."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise GenolmError(f"the {name} set needs a non-empty 2-D embedding matrix, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise GenolmError(f"the {name} set has {len(x)} embeddings but {y.size} labels (shape {y.shape})")
    if not np.isfinite(x).all():
        raise GenolmError(f"the {name} set's embeddings hold NaN or infinite values")
    return x, y


@dataclass
class ProbeFit:
    """The chosen probe and how it was chosen.

    Attributes:
        model: ``StandardScaler`` -> ``LogisticRegression`` fitted on the training embeddings.
        c: the chosen inverse regularisation strength.
        dev_mcc: its MCC on the dev set.
        grid: one dict per ``C`` with ``c``, ``dev_mcc`` and ``n_iter``.

    """

    model: Pipeline
    c: float
    dev_mcc: float
    grid: list[dict] = field(default_factory=list)


def fit_probe(train_x: np.ndarray, train_y: Sequence, dev_x: np.ndarray, dev_y: Sequence,
              cs: Sequence[float] = CS, seed: int = 0) -> ProbeFit:
    """Fit a standardised logistic regression for each ``C``; keep the best by dev MCC.

    Ties keep the earlier ``C`` (the order given; the default grid runs from strong to weak
    regularisation, so ties keep the simpler model).

    Args:
        train_x: ``(N, D)`` training embeddings.
        train_y: ``N`` labels, at least two distinct values.
        dev_x: ``(M, D)`` dev embeddings (model selection only).
        dev_y: ``M`` labels.
        cs: candidate inverse regularisation strengths (positive).
        seed: random state of the solver.

    Raises:
        GenolmError: empty or mismatched sets, a single training class, a width that differs
            between sets, non-finite values or an empty grid.

    """
    train_x, train_y = _check(train_x, train_y, "training")
    dev_x, dev_y = _check(dev_x, dev_y, "dev")
    if dev_x.shape[1] != train_x.shape[1]:
        raise GenolmError(f"dev embeddings have {dev_x.shape[1]} columns, training {train_x.shape[1]}")
    if len(np.unique(train_y)) < 2:
        raise GenolmError(f"the training set has a single class ({train_y[0]!r}): nothing to separate")
    cs = list(cs)
    if not cs or min(cs) <= 0:
        raise GenolmError(f"the probe's C grid needs positive values, got {cs}")
    best, grid = None, []
    for c in cs:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed))
        model.fit(train_x, train_y)
        mcc = float(matthews_corrcoef(dev_y, model.predict(dev_x)))
        grid.append({"c": c, "dev_mcc": mcc, "n_iter": int(np.max(model[-1].n_iter_))})
        if best is None or mcc > best.dev_mcc:
            best = ProbeFit(model=model, c=c, dev_mcc=mcc)
    best.grid = grid
    return best


def evaluate(model: Pipeline, x: np.ndarray, y: Sequence) -> dict[str, float]:
    """``mcc``, ``auroc``, ``accuracy`` and ``f1`` (macro) of a fitted probe on a test set.

    AUROC: probability of the larger class for two classes, one-vs-rest macro average for more,
    NaN when the test labels hold a single class (as :func:`genolm.baselines.kmer.evaluate`).
    """
    x, y = _check(x, y, "test")
    return classification_scores(y, model.predict_proba(x), model.classes_)
