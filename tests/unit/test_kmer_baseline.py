"""k-mer logistic-regression baseline: hand-counted features, a planted motif, refused input."""

from __future__ import annotations

import numpy as np
import pytest

from genolm.baselines.kmer import evaluate, fit_kmer_logreg, kmer_features
from genolm.errors import GenolmError

MOTIF = "TGACTCA"


def _column(kmer: str, k_values=(1, 2)) -> int:
    """Column of ``kmer`` when blocks k_values are stacked, each in lexicographic ACGT order."""
    offset = 0
    for k in k_values:
        if k == len(kmer):
            return offset + int("".join(str("ACGT".index(b)) for b in kmer), 4)
        offset += 4**k
    raise AssertionError(kmer)


def test_features_match_hand_counts():
    x = kmer_features(["AACGT", "acNGTT"], k_values=(1, 2)).toarray()
    assert x.shape == (2, 4 + 16)
    want = np.zeros((2, 20))
    # AACGT: bases A A C G T; 2-mers AA AC CG GT, each 1/4
    for base, f in {"A": 2 / 5, "C": 1 / 5, "G": 1 / 5, "T": 1 / 5}.items():
        want[0, _column(base)] = f
    for kmer in ("AA", "AC", "CG", "GT"):
        want[0, _column(kmer)] = 1 / 4
    # acNGTT (lower case counts): bases A C G T T; 2-mers AC, GT, TT (CN and NG skipped), each 1/3
    for base, f in {"A": 1 / 5, "C": 1 / 5, "G": 1 / 5, "T": 2 / 5}.items():
        want[1, _column(base)] = f
    for kmer in ("AC", "GT", "TT"):
        want[1, _column(kmer)] = 1 / 3
    np.testing.assert_allclose(x, want)
    counts = kmer_features(["AACGT", "acNGTT"], k_values=(2,), normalise=False).toarray()
    assert counts.sum(axis=1).tolist() == [4, 3]
    assert counts[0, _column("AA", (2,))] == 1 and counts[1, _column("TT", (2,))] == 1


def test_columns_align_and_edge_rows():
    train = kmer_features(["GGGG", "ACGTACGT"], k_values=(3, 1))
    test = kmer_features(["TTT", "NNNN", "A"], k_values=(3, 1))
    assert train.shape[1] == test.shape[1] == 64 + 4
    assert test.format == "csr"
    # TTT is the last 3-mer column; GGG three columns before it in lexicographic order
    assert test[0, 63] == 1 and train[0, 42] == 1
    assert test[1].nnz == 0  # only N: no valid k-mer, all zero
    assert test[2, :64].nnz == 0 and test[2, 64] == 1  # too short for k=3, one base for k=1


def _motif_task(n: int, rng: np.random.Generator, length: int = 101) -> tuple[list[str], np.ndarray]:
    """Random DNA; positives carry MOTIF at a random position."""
    labels = rng.permutation(np.arange(n) % 2)
    seqs = []
    for y in labels:
        seq = "".join(rng.choice(list("ACGT"), size=length))
        if y:
            at = rng.integers(0, length - len(MOTIF) + 1)
            seq = seq[:at] + MOTIF + seq[at + len(MOTIF):]
        seqs.append(seq)
    return seqs, labels


@pytest.fixture(scope="module")
def motif_splits():
    rng = np.random.default_rng(7)
    return _motif_task(400, rng), _motif_task(200, rng), _motif_task(200, rng)


def test_planted_motif_is_found(motif_splits):
    (tr_x, tr_y), (dv_x, dv_y), (te_x, te_y) = motif_splits
    fit = fit_kmer_logreg(tr_x, tr_y, dv_x, dv_y, seed=0)
    assert fit.k in (3, 4, 5, 6) and fit.c in (0.01, 0.1, 1, 10)
    assert len(fit.grid) == 16 and fit.dev_mcc == max(g["dev_mcc"] for g in fit.grid)
    metrics = evaluate(fit.model, te_x, te_y)
    assert metrics["mcc"] > 0.8, (fit.k, fit.c, metrics)
    assert metrics["auroc"] > 0.9 and metrics["accuracy"] > 0.9 and metrics["f1"] > 0.9
    assert fit.model.predict(te_x[:3]).shape == (3,)


def test_shuffled_labels_stay_near_zero(motif_splits):
    (tr_x, tr_y), (dv_x, dv_y), (te_x, te_y) = motif_splits
    rng = np.random.default_rng(11)
    fit = fit_kmer_logreg(tr_x, rng.permutation(tr_y), dv_x, rng.permutation(dv_y), ks=(4, 6), cs=(0.1, 1))
    metrics = evaluate(fit.model, te_x, rng.permutation(te_y))
    assert abs(metrics["mcc"]) < 0.3, metrics


def test_multiclass_runs():
    rng = np.random.default_rng(3)
    alphabets = ("AC", "GT", "ACGT")
    seqs = ["".join(rng.choice(list(alphabet), size=40)) for alphabet in alphabets for _ in range(30)]
    labels = np.repeat([0, 1, 2], 30)
    fit = fit_kmer_logreg(seqs, labels, seqs, labels, ks=(2,), cs=(1,))
    metrics = evaluate(fit.model, seqs, labels)
    assert metrics["mcc"] > 0.9 and metrics["auroc"] > 0.9


@pytest.mark.parametrize(
    ("train", "labels", "match"),
    [
        ([], [], "training set is empty"),
        (["ACGT", "TTGA", "GGCA"], [0, 1], "3 sequences but 2 labels"),
        (["ACGT", "TTGA"], [0, 1, 1], "2 sequences but 3 labels"),
        (["ACGT", "TTGA"], [1, 1], "single class"),
    ],
)
def test_bad_input_is_refused(train, labels, match):
    with pytest.raises(GenolmError, match=match):
        fit_kmer_logreg(train, labels, ["ACGT", "TTGA"], [0, 1])


def test_bad_dev_and_test_input_is_refused(motif_splits):
    (tr_x, tr_y), _, _ = motif_splits
    with pytest.raises(GenolmError, match="dev set is empty"):
        fit_kmer_logreg(tr_x, tr_y, [], [])
    fit = fit_kmer_logreg(tr_x, tr_y, tr_x[:20], tr_y[:20], ks=(3,), cs=(1,))
    with pytest.raises(GenolmError, match="test set has 2 sequences but 1 labels"):
        evaluate(fit.model, tr_x[:2], tr_y[:1])
    with pytest.raises(GenolmError, match="k-mer lengths"):
        kmer_features(["ACGT"], k_values=(0,))
