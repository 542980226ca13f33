"""In-silico saturation mutagenesis (ISM) and ISM-derived hypothetical contributions.

:func:`saturation_mutagenesis` scores every single-base substitution of each sequence with any
score function ``list[str] -> array`` (a classifier's target-class logit or probability, a causal
LM's total log-likelihood, or a toy model in tests). The reference and all ``3 L`` mutants of a
sequence go through the score function together, in chunks of ``batch_size``. A score function
with a ``variants(reference, variants, batch_size)`` method (a Mixtral classifier's
:class:`~genolm.interpret.ism_prefix.PrefixClassifierScorer`) scores them through it instead,
computing the reference's shared token prefix once.

The effect matrix of a sequence is ``4 x L`` (rows A, C, G, T): ``effect[b, i] = score(sequence
with base b at i) - score(sequence)``, so the observed base's entry is 0 (at an ``N`` all four
bases are substitutions).

:func:`ism_hypothetical` turns effects into the one-hot contribution scores TF-MoDISco reads:
the hypothetical contribution of base ``b`` at ``i`` is its effect minus the mean effect of the
four bases at ``i`` (the DeepLIFT convention with a uniform reference base; for a model linear in
the one-hot input it equals the gradient formulation exactly), and the actual contribution is the
hypothetical one at the observed base (zero elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from genolm.data.sequences import BASES
from genolm.errors import GenolmError
from genolm.inference.batches import encode, forward_batch, max_positions, resolve_device

ScoreFn = Callable[[list[str]], np.ndarray]


def mutants(seq: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every single-base substitution of ``seq``: ``(sequences, positions, base indices)``."""
    seq = seq.upper()
    out, pos, base = [], [], []
    for i, ref in enumerate(seq):
        for b, letter in enumerate(BASES):
            if letter != ref:
                out.append(f"{seq[:i]}{letter}{seq[i + 1:]}")
                pos.append(i)
                base.append(b)
    return out, np.array(pos, dtype=np.int64), np.array(base, dtype=np.int64)


def saturation_mutagenesis(score_fn: ScoreFn, seqs: Sequence[str], batch_size: int = 512,
                           ids: Sequence[str] | None = None, progress: bool = True
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Effects of every single-base substitution, batched per sequence.

    Args:
        score_fn: scores a list of sequences (higher = more of the output being explained); its
            ``variants`` method, if any, scores a reference and its mutants in one go.
        seqs: sequences (any case; lengths may differ).
        batch_size: sequences per call of ``score_fn``; the reference and its ``3 L`` mutants are
            cut into chunks of this size.
        ids: names for error messages (default: 1-based indices).
        progress: show a progress bar over sequences.

    Returns:
        ``(effects, reference)``: effects ``(N, 4, L_max)`` float64 (zero past each sequence's
        end and at its observed bases) and the reference scores ``(N,)``.

    Raises:
        GenolmError: the score function refused a sequence (named by its id), e.g. too long.

    """
    if not len(seqs):
        raise GenolmError("no sequences to mutate")
    if batch_size < 1:
        raise GenolmError(f"batch_size must be positive, got {batch_size}")
    names = list(ids) if ids is not None else [str(i + 1) for i in range(len(seqs))]
    effects = np.zeros((len(seqs), 4, max(len(s) for s in seqs)))
    reference = np.zeros(len(seqs))
    share_prefix = getattr(score_fn, "variants", None)
    for row, seq in enumerate(tqdm(seqs, desc="ISM", unit="seq", disable=not progress)):
        variants, pos, base = mutants(seq)
        try:
            if share_prefix is not None:
                reference[row], scores = share_prefix(seq.upper(), variants, batch_size)
            else:
                batch = [seq.upper(), *variants]
                scores = np.concatenate([np.asarray(score_fn(batch[lo : lo + batch_size]), dtype=np.float64)
                                         for lo in range(0, len(batch), batch_size)])
                reference[row], scores = scores[0], scores[1:]
        except GenolmError as err:
            raise GenolmError(f"sequence '{names[row]}': {err}") from None
        effects[row, base, pos] = scores - reference[row]
    return effects, reference


def ism_one_by_one(score_fn: ScoreFn, seq: str) -> np.ndarray:
    """The naive loop: one call of ``score_fn`` per mutant (the test oracle and speed baseline)."""
    seq = seq.upper()
    ref = float(np.asarray(score_fn([seq]))[0])
    out = np.zeros((4, len(seq)))
    for i in range(len(seq)):
        for b, letter in enumerate(BASES):
            if letter != seq[i]:
                out[b, i] = float(np.asarray(score_fn([seq[:i] + letter + seq[i + 1:]]))[0]) - ref
    return out


def ism_hypothetical(effects: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ISM effects ``(N, 4, L)`` -> ``(actual, hypothetical)`` contributions, both ``(N, L, 4)``.

    ``hypothetical[n, i, b] = effects[n, b, i] - mean_b' effects[n, b', i]``; ``actual`` keeps it at
    the observed base only (``onehot`` is ``(N, L, 4)``; rows of ``N`` and padding give zero).
    """
    if effects.shape[0] != onehot.shape[0] or effects.shape[2] != onehot.shape[1]:
        raise GenolmError(f"effects {effects.shape} and one-hot {onehot.shape} do not match")
    hyp = (effects - effects.mean(axis=1, keepdims=True)).transpose(0, 2, 1)
    hyp = hyp * (onehot.sum(-1, keepdims=True) > 0)  # padding: nothing to explain
    return (hyp * onehot).astype(np.float32), hyp.astype(np.float32)


def classifier_scorer(module, target_class: int = 1, output: str = "logit", device: str = "auto",
                      strand: str = "forward") -> ScoreFn:
    """Score function of a genolm classifier: target-class ``logit`` or ``prob`` (fast Mixtral trunk).

    ``strand`` scores the sequences, their reverse complements or both averaged (as the oracle).
    """
    from genolm.design.oracle import classifier_oracle

    return classifier_oracle(module, target_class, output, device, strand=strand)


def lm_scorer(model, tokenizer, device: str = "auto") -> ScoreFn:
    """Score function of a causal LM: the total log-likelihood (nats) of each sequence's tokens."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    max_pos = max_positions(model)

    @torch.no_grad()
    def score(seqs: list[str]) -> np.ndarray:
        ids, mask = encode(tokenizer, seqs, max_pos)
        return forward_batch(model, ids.to(dev), mask.to(dev), "mean")[1].cpu().numpy()

    return score
