"""A small convolutional network trained from scratch on one-hot DNA: the second from-scratch baseline.

DeepBind/Basset-like and deliberately plain: one-hot input (A, C, G, T channels; N and other
ambiguity codes 0.25 in every channel; padding of shorter sequences all zero) -> conv (motif
scanners) -> ReLU -> max pool -> conv -> ReLU -> global max pool -> dropout -> linear. Trained with
Adam and cross-entropy in a seeded torch loop (no Lightning, no Hydra): every epoch draws each
training sequence on a random strand, the dev MCC after each epoch picks the best weights, and
training stops after ``patience`` epochs without a better dev MCC. Prediction averages the class
probabilities of both strands by default (the reverse complement of a one-hot matrix is the matrix
flipped along both axes).

For a given seed, device and thread count the fit is deterministic. :func:`evaluate` reports the
same metrics as :func:`genolm.baselines.kmer.evaluate` (it is the same code).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import matthews_corrcoef
from torch import nn

from genolm.baselines.kmer import check_split, classification_scores
from genolm.data.sequences import one_hot as dna_one_hot
from genolm.errors import GenolmError

log = logging.getLogger(__name__)

def one_hot(seqs: Sequence[str], length: int | None = None) -> np.ndarray:
    """One-hot DNA as a ``(n, 4, length)`` float32 array (channels A, C, G, T).

    Args:
        seqs: DNA sequences; case is ignored, N and other letters become 0.25 in every channel.
        length: width of the array (default: the longest sequence); shorter sequences are padded
            with all-zero columns at the end, longer ones are cut.

    Returns:
        The one-hot array.

    """
    return np.ascontiguousarray(dna_one_hot(seqs, length or None, unknown=0.25).transpose(0, 2, 1))


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot batches ``(n, 4, L)``: A<->T and C<->G are flipped channels."""
    return x.flip(1).flip(2)


class MotifCNN(nn.Module):
    """conv -> ReLU -> max pool -> conv -> ReLU -> global max pool -> dropout -> linear.

    Args:
        num_classes: output classes.
        filters: channels of both convolutions.
        width: width of the first (motif) convolution.
        width2: width of the second convolution.
        pool: max-pool size (and stride) after the first convolution.
        dropout: dropout before the linear layer.

    """

    def __init__(self, num_classes: int = 2, filters: int = 64, width: int = 15, width2: int = 5,
                 pool: int = 4, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(4, filters, width, padding=width // 2), nn.ReLU(), nn.MaxPool1d(pool, ceil_mode=True),
            nn.Conv1d(filters, filters, width2, padding=width2 // 2), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(filters, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_classes)`` of one-hot batches ``(n, 4, L)``."""
        return self.head(self.features(x))


@dataclass
class CnnFit:
    """A fitted :class:`MotifCNN` with the best dev weights, and how training went.

    Attributes:
        net: the network (eval mode) with the weights of the best dev epoch.
        classes_: class labels, index = output unit (as scikit-learn's ``classes_``).
        length: input width the sequences are padded or cut to.
        both_strands: whether :meth:`predict_proba` averages both strands.
        dev_mcc: dev MCC of the kept weights.
        best_epoch: the epoch (1-based) those weights come from.
        history: per epoch ``epoch``, ``train_loss``, ``dev_mcc``.
        seconds: wall time of the fit.

    """

    net: MotifCNN
    classes_: np.ndarray
    length: int
    both_strands: bool = True
    dev_mcc: float = float("nan")
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def predict_proba(self, seqs: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, averaged over both strands if :attr:`both_strands`."""
        return _proba(self.net, torch.from_numpy(one_hot(list(seqs), self.length)), self.both_strands,
                      batch_size)


@torch.no_grad()
def _proba(net: nn.Module, x: torch.Tensor, both_strands: bool, batch_size: int = 1024) -> np.ndarray:
    """Softmax probabilities of one-hot ``x`` in batches (mean of both strands if ``both_strands``)."""
    net.eval()
    parts = []
    for chunk in torch.split(x, batch_size):
        probs = net(chunk).softmax(-1)
        if both_strands:
            probs = (probs + net(reverse_complement(chunk)).softmax(-1)) / 2
        parts.append(probs)
    return torch.cat(parts).numpy()


def fit_cnn(train_seqs: Sequence[str], train_labels: Sequence, dev_seqs: Sequence[str], dev_labels: Sequence,
            seed: int = 0, max_epochs: int = 20, patience: int = 5, batch_size: int = 128, lr: float = 1e-3,
            weight_decay: float = 0.0, rc_aug: bool = True, both_strands: bool = True,
            **arch: int | float) -> CnnFit:
    """Train a :class:`MotifCNN` with early stopping on dev MCC and keep the best dev weights.

    Args:
        train_seqs: training sequences.
        train_labels: one label per training sequence, at least two distinct values.
        dev_seqs: dev sequences (early stopping and weight selection).
        dev_labels: one label per dev sequence.
        seed: seeds the initial weights, the batch order, the strand draws and dropout.
        max_epochs: most epochs.
        patience: stop after this many epochs without a better dev MCC.
        batch_size: sequences per Adam step.
        lr: Adam learning rate.
        weight_decay: Adam's L2 penalty.
        rc_aug: draw each training sequence on a random strand every epoch.
        both_strands: score dev (and later test) sequences as the mean of both strands.
        **arch: :class:`MotifCNN` arguments (``filters``, ``width``, ``width2``, ``pool``, ``dropout``).

    Returns:
        The fit, its weights restored to the best dev epoch.

    Raises:
        GenolmError: on an empty split, mismatched labels, a single training class or a bad setting.

    """
    train_seqs, train_labels = check_split(train_seqs, train_labels, "training")
    dev_seqs, dev_labels = check_split(dev_seqs, dev_labels, "dev")
    classes = np.unique(train_labels)
    if len(classes) < 2:
        raise GenolmError(f"the training set has a single class ({classes[0]!r}): nothing to separate")
    if max_epochs < 1 or patience < 1 or batch_size < 1 or lr <= 0:
        raise GenolmError(f"CNN settings must be positive: max_epochs={max_epochs}, patience={patience}, "
                          f"batch_size={batch_size}, lr={lr}")
    start = time.perf_counter()
    length = max(len(s) for s in [*train_seqs, *dev_seqs])
    x_train = torch.from_numpy(one_hot(train_seqs, length))
    y_train = torch.from_numpy(np.searchsorted(classes, train_labels))
    x_dev = torch.from_numpy(one_hot(dev_seqs, length))
    with torch.random.fork_rng(devices=[]):  # leaves the caller's global RNG state untouched
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = MotifCNN(num_classes=len(classes), **arch)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        fit = CnnFit(net=net, classes_=classes, length=length, both_strands=both_strands, dev_mcc=-np.inf)
        best_state, stale = None, 0
        for epoch in range(1, max_epochs + 1):
            loss = _train_epoch(net, optimizer, x_train, y_train, batch_size, rc_aug, gen)
            dev_pred = classes[_proba(net, x_dev, both_strands).argmax(1)]
            mcc = float(matthews_corrcoef(dev_labels, dev_pred))
            fit.history.append({"epoch": epoch, "train_loss": loss, "dev_mcc": mcc})
            log.info("cnn seed %d epoch %d: train loss %.4f, dev MCC %.4f", seed, epoch, loss, mcc)
            if mcc > fit.dev_mcc:
                fit.dev_mcc, fit.best_epoch, stale = mcc, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= patience:
                    break
    net.load_state_dict(best_state)
    net.eval()
    fit.seconds = time.perf_counter() - start
    return fit


def _train_epoch(net: MotifCNN, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int, rc_aug: bool, gen: torch.Generator) -> float:
    """One pass over the shuffled training set; returns the mean training loss."""
    net.train()
    order = torch.randperm(len(x), generator=gen)
    flip = torch.rand(len(x), generator=gen) < 0.5 if rc_aug else torch.zeros(len(x), dtype=torch.bool)
    total = 0.0
    for batch in torch.split(order, batch_size):
        xb = x[batch]
        turn = flip[batch]
        if turn.any():
            xb[turn] = reverse_complement(xb[turn])
        loss = nn.functional.cross_entropy(net(xb), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(x)


def evaluate(fit: CnnFit, seqs: Sequence[str], labels: Sequence) -> dict[str, float]:
    """Test metrics of a fitted CNN: ``mcc``, ``auroc``, ``accuracy``, ``f1`` (as the k-mer baseline)."""
    seqs, labels = check_split(seqs, labels, "test")
    return classification_scores(labels, fit.predict_proba(seqs), fit.classes_)
