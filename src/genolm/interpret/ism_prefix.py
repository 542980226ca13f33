"""Saturation mutagenesis that computes each reference's shared token prefix once.

A single-base substitution changes a sequence's BPE tokenization only from some token on; in a
causal model every position before that token has the same keys and values in the mutant as in
the reference. :class:`PrefixClassifierScorer` therefore runs the reference once through
:func:`genolm.models.fast_mixtral.mixtral_trunk`, keeps its per-layer keys and values, sorts the
mutants by their first differing token and runs each group of them only from the group's
smallest first differing token on, attending to the reference's cached prefix (the idea of
:func:`genolm.inference.pairs.forward_pairs`, one reference for many alternatives). A classifier's
score is read at the last real token, which every mutant runs itself (the last layer runs its
queries and experts there only: ``mixtral_trunk(last=...)``). Effects equal the generic
path to float32 rounding (``tests/test_ism_prefix.py``).

The scorer is also a plain score function (``list[str] -> array``, the fast trunk over whole
sequences), so everything that takes one still works; :func:`genolm.interpret.ism.saturation_mutagenesis`
uses its :meth:`~PrefixClassifierScorer.variants` method when it is there.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import MixtralForSequenceClassification

from genolm.data.tokenizers import encode_many
from genolm.errors import GenolmError
from genolm.inference.pairs import pad_batch
from genolm.inference.scoring import resolve_device
from genolm.models.classifier import classifier_logits
from genolm.models.fast_mixtral import mixtral_trunk

GROUP_ROWS = 64  # mutants per trunk call: larger wastes more of the prefix, smaller costs more calls


def prefix_ism_supported(net: torch.nn.Module) -> bool:
    """Whether the prefix-sharing path applies (a plain causal Mixtral sequence classifier)."""
    return type(net) is MixtralForSequenceClassification


def first_difference(rows: list[list[int]]) -> np.ndarray:
    """Index of the first token where each of ``rows[1:]`` differs from ``rows[0]`` (the reference).

    A row that is a prefix of the reference (or equal to it) gets its own length.
    """
    width = max(map(len, rows))
    ids, _ = pad_batch(rows, -1)
    ids = ids.numpy()
    differ = ids[1:] != ids[0]
    return np.where(differ.any(1), differ.argmax(1), width)


def prefix_groups(first: np.ndarray, lengths: np.ndarray, rows: int) -> list[tuple[int, np.ndarray]]:
    """Mutants sorted by first differing token, cut into groups of ``rows``: ``(shared, indices)``.

    ``shared`` is the group's smallest first differing token, capped so that every mutant of the
    group runs at least its last token.
    """
    order = np.argsort(first, kind="stable")
    groups = []
    for lo in range(0, len(order), rows):
        idx = order[lo : lo + rows]
        groups.append((int(min(first[idx].min(), lengths[idx].min() - 1)), idx))
    return groups


class PrefixClassifierScorer:
    """Target-class logit or probability of a Mixtral classifier, with a prefix-sharing ISM method.

    Args:
        module: a :class:`~genolm.modules.classifier.SequenceClassifierModule` whose ``net``
            passes :func:`prefix_ism_supported`.
        target_class: class whose logit (or probability) is the score.
        output: ``logit`` or ``prob``.
        device: ``auto``, ``cpu``, ``cuda``.
        group_rows: mutants per trunk call.

    """

    def __init__(self, module, target_class: int = 1, output: str = "logit", device: str = "auto",
                 group_rows: int = GROUP_ROWS) -> None:
        if not prefix_ism_supported(module.net):
            raise GenolmError(f"prefix ISM needs a MixtralForSequenceClassification, got "
                              f"{type(module.net).__name__}")
        if not 0 <= target_class < int(module.hparams.num_labels):
            raise GenolmError(f"class {target_class} out of range (the classifier has "
                              f"{module.hparams.num_labels})")
        if output not in {"prob", "logit"}:
            raise GenolmError(f"output must be 'prob' or 'logit', got {output!r}")
        self.device = resolve_device(device)
        self.net, self.tok = module.net.to(self.device).eval(), module.tokenizer
        self.max_pos, self.target, self.output = int(module.max_positions), target_class, output
        self.group_rows = group_rows

    def _scores(self, logits: torch.Tensor) -> np.ndarray:
        logits = logits.float()
        out = logits.softmax(-1) if self.output == "prob" else logits
        return out[:, self.target].double().cpu().numpy()

    def _encode(self, seqs: list[str]) -> list[list[int]]:
        rows = encode_many(self.tok, [s.upper() for s in seqs])
        longest = max(map(len, rows))
        if longest > self.max_pos:
            raise GenolmError(f"a sequence tokenizes to {longest} tokens, more than the model's "
                              f"{self.max_pos} positions; use shorter sequences")
        return rows

    @torch.inference_mode()
    def __call__(self, seqs: list[str]) -> np.ndarray:
        """Scores of whole sequences (the generic fast-trunk path)."""
        ids, mask = pad_batch(self._encode(seqs), self.tok.pad_token_id)
        return self._scores(classifier_logits(self.net, ids.to(self.device), mask.to(self.device)))

    @torch.inference_mode()
    def variants(self, reference: str, variants: list[str], batch_size: int | None = None
                 ) -> tuple[float, np.ndarray]:
        """Score a reference and variants of it, sharing the reference's keys and values.

        Args:
            reference: the sequence.
            variants: sequences to score against it (any edits; the more leading tokens they
                share with the reference, the less they cost).
            batch_size: at most this many variants per trunk call (default: ``group_rows``).

        Returns:
            ``(reference score, variant scores (len(variants),) float64)``.

        """
        rows = self._encode([reference, *variants])
        ref = torch.tensor([rows[0]], device=self.device)
        h_ref, _, kv = mixtral_trunk(self.net, ref, keep_kv=True)
        ref_score = float(self._scores(self.net.score(h_ref[:, -1]))[0])
        first = first_difference(rows)
        lengths = np.fromiter(map(len, rows[1:]), dtype=np.int64, count=len(variants))
        out = np.empty(len(variants))
        for shared, idx in prefix_groups(first, lengths, min(self.group_rows, batch_size or self.group_rows)):
            ids, mask = pad_batch([rows[1 + i][shared:] for i in idx], self.tok.pad_token_id)
            n = len(idx)
            prefix = [(k[:, :, :shared].expand(n, -1, -1, -1), v[:, :, :shared].expand(n, -1, -1, -1))
                      for k, v in kv] if shared else None
            last = mask.to(self.device).sum(1) - 1
            hidden, _, _ = mixtral_trunk(self.net, ids.to(self.device), prefix=prefix, last=last)
            out[idx] = self._scores(self.net.score(hidden[:, 0]))
        return ref_score, out
