"""Oracles: batched, counted scoring of candidate sequences (higher is better)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from genolm.errors import GenolmError
from genolm.inference.batches import encode, forward_batch, max_positions, resolve_device
from genolm.inference.strands import check_strand, on_strands
from genolm.models.classifier import classifier_logits


class Oracle:
    """Wrap a scoring function ``list[str] -> array`` with batching and a call counter.

    Args:
        fn: scores a list of sequences.
        batch_size: sequences per call of ``fn``.
        maximize: ``False`` turns the objective into minimization.

    """

    def __init__(self, fn: Callable[[list[str]], np.ndarray], batch_size: int = 512,
                 maximize: bool = True) -> None:
        self.fn, self.batch_size, self.sign = fn, batch_size, 1.0 if maximize else -1.0
        self.calls = 0

    def raw(self, seqs: Sequence[str]) -> np.ndarray:
        """Scores as the model gives them (not sign-flipped)."""
        out = [np.asarray(self.fn(list(seqs[lo : lo + self.batch_size])), dtype=np.float64)
               for lo in range(0, len(seqs), self.batch_size)]
        self.calls += len(seqs)
        return np.concatenate(out) if out else np.zeros(0)

    def __call__(self, seqs: Sequence[str]) -> np.ndarray:
        """Objective values: higher is better."""
        return self.sign * self.raw(seqs)


def classifier_oracle(module, target_class: int = 1, output: str = "prob", device: str = "auto",
                      strand: str = "forward") -> Callable[[list[str]], np.ndarray]:
    """Score function of a :class:`~genolm.modules.classifier.SequenceClassifierModule`.

    Args:
        module: the classifier (with ``.net`` and ``.tokenizer``).
        target_class: class whose probability (or logit) is the score.
        output: ``prob`` or ``logit``.
        device: ``auto``, ``cpu``, ``cuda``. genolm's kernels run as switched on ``module.net``
            (:func:`genolm.models.fast.switch.use_fast`; Mixtral classifiers then take the lean
            trunk of :func:`genolm.models.classifier.classifier_logits`).
        strand: score the sequences (``forward``), their reverse complements (``reverse``) or
            the mean of both strands' probabilities or logits (``average``).

    """
    num_labels = int(module.hparams.num_labels)
    if not 0 <= target_class < num_labels:
        raise GenolmError(f"oracle: class {target_class} out of range (the classifier has {num_labels})")
    if output not in {"prob", "logit"}:
        raise GenolmError(f"oracle: output must be 'prob' or 'logit', got {output!r}")
    check_strand(strand)
    dev = resolve_device(device)
    net, tok = module.net.to(dev).eval(), module.tokenizer
    max_pos = int(module.max_positions)

    @torch.no_grad()
    def values(seqs: list[str]) -> np.ndarray:
        ids, mask = encode(tok, seqs, max_pos)
        logits = classifier_logits(net, ids.to(dev), mask.to(dev)).float()
        return (logits.softmax(-1) if output == "prob" else logits).cpu().numpy()

    def score(seqs: list[str]) -> np.ndarray:
        return on_strands(values, strand, seqs)[:, target_class]

    return score


def lm_naturalness(model, tokenizer, weight: float, device: str = "auto"
                   ) -> Callable[[list[str]], np.ndarray]:
    """``weight`` x per-base log-likelihood under a causal LM (keeps designs DNA-like)."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    max_pos = max_positions(model)

    def score(seqs: list[str]) -> np.ndarray:
        ids, mask = encode(tokenizer, seqs, max_pos)
        ll = forward_batch(model, ids.to(dev), mask.to(dev), "mean")[1].cpu().numpy()
        return weight * ll / np.array([len(s) for s in seqs])

    return score


def combine(*fns: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """Sum of several score functions."""
    return lambda seqs: np.sum([np.asarray(f(seqs), dtype=np.float64) for f in fns], axis=0)
