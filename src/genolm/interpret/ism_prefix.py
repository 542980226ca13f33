"""Saturation mutagenesis that computes each reference's shared token prefix once.

A single-base substitution changes a sequence's BPE tokenization only from some token on; in a
causal model every position before that token has the same keys and values in the mutant as in
the reference. :class:`PrefixClassifierScorer` therefore runs the reference once through
:func:`genolm.models.fast.mixtral.mixtral_trunk`, keeps its per-layer keys and values, sorts the
mutants by their first differing token and runs each group of them only from the group's
smallest first differing token on, attending to the reference's cached prefix (the idea of
:func:`genolm.scoring.pairs.forward_pairs`, one reference for many alternatives). A classifier's
score is read at the last real token, which every mutant runs itself (the last layer runs its
queries and experts there only: ``mixtral_trunk(last=...)``). Effects equal the generic
path to float32 rounding (``tests/integration/test_ism_prefix.py``).

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
from genolm.inference.batches import max_positions, pad_batch, resolve_device
from genolm.models.classifier import classifier_logits
from genolm.models.fast.fused_loss import token_log_probs
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk

GROUP_ROWS = 64  # mutants per trunk call: larger wastes more of the prefix, smaller costs more calls


def prefix_ism_supported(net: torch.nn.Module) -> bool:
    """Whether the prefix-sharing path applies (:func:`genolm.models.fast.switch.lean_trunk`).

    genolm's kernels are switched on and ``net`` is a plain Mixtral classifier or causal LM.
    """
    return lean_trunk(net)


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


class _PrefixScorer:
    """Shared machinery: tokenization, the reference pass and the groups of variants."""

    net: torch.nn.Module

    def __init__(self, net: torch.nn.Module, tokenizer, max_positions: int, device: str,
                 group_rows: int) -> None:
        if not prefix_ism_supported(net):
            raise GenolmError(f"prefix ISM needs a Mixtral classifier or causal LM, got {type(net).__name__}")
        self.device = resolve_device(device)
        self.net, self.tok = net.to(self.device).eval(), tokenizer
        self.max_pos, self.group_rows = int(max_positions), group_rows

    def _encode(self, seqs: list[str]) -> list[list[int]]:
        rows = encode_many(self.tok, [s.upper() for s in seqs])
        longest = max(map(len, rows))
        if longest > self.max_pos:
            raise GenolmError(f"a sequence tokenizes to {longest} tokens, more than the model's "
                              f"{self.max_pos} positions; use shorter sequences")
        return rows

    def _whole(self, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Scores of whole right-padded sequences."""
        raise NotImplementedError

    def _reference(self, ids: torch.Tensor, hidden: torch.Tensor) -> float:
        """The reference's score from its hidden states ``[1, T, H]``; may keep what groups need."""
        raise NotImplementedError

    def _group(self, ids: torch.Tensor, mask: torch.Tensor, shared: int, prefix: list | None) -> np.ndarray:
        """Scores of variants whose tokens from ``shared`` on are ``ids`` (right-padded)."""
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(self, seqs: list[str]) -> np.ndarray:
        """Scores of whole sequences (the generic fast-trunk path)."""
        ids, mask = pad_batch(self._encode(seqs), self.tok.pad_token_id)
        return self._whole(ids.to(self.device), mask.to(self.device))

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
        ref_score = self._reference(ref, h_ref)
        first = first_difference(rows)
        lengths = np.fromiter(map(len, rows[1:]), dtype=np.int64, count=len(variants))
        out = np.empty(len(variants))
        for shared, idx in prefix_groups(first, lengths, min(self.group_rows, batch_size or self.group_rows)):
            ids, mask = pad_batch([rows[1 + i][shared:] for i in idx], self.tok.pad_token_id)
            n = len(idx)
            prefix = [(k[:, :, :shared].expand(n, -1, -1, -1), v[:, :, :shared].expand(n, -1, -1, -1))
                      for k, v in kv] if shared else None
            out[idx] = self._group(ids.to(self.device), mask.to(self.device), shared, prefix)
        return ref_score, out


class PrefixClassifierScorer(_PrefixScorer):
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
        if type(module.net) is not MixtralForSequenceClassification:
            raise GenolmError(f"prefix ISM of a classifier needs a MixtralForSequenceClassification, got "
                              f"{type(module.net).__name__}")
        if not 0 <= target_class < int(module.hparams.num_labels):
            raise GenolmError(f"class {target_class} out of range (the classifier has "
                              f"{module.hparams.num_labels})")
        if output not in {"prob", "logit"}:
            raise GenolmError(f"output must be 'prob' or 'logit', got {output!r}")
        super().__init__(module.net, module.tokenizer, module.max_positions, device, group_rows)
        self.target, self.output = target_class, output

    def _scores(self, logits: torch.Tensor) -> np.ndarray:
        logits = logits.float()
        out = logits.softmax(-1) if self.output == "prob" else logits
        return out[:, self.target].double().cpu().numpy()

    def _whole(self, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        return self._scores(classifier_logits(self.net, ids, mask))

    def _reference(self, ids: torch.Tensor, hidden: torch.Tensor) -> float:
        return float(self._scores(self.net.score(hidden[:, -1]))[0])

    def _group(self, ids: torch.Tensor, mask: torch.Tensor, shared: int, prefix: list | None) -> np.ndarray:
        hidden, _, _ = mixtral_trunk(self.net, ids, prefix=prefix, last=mask.sum(1) - 1)
        return self._scores(self.net.score(hidden[:, 0]))


class PrefixLMScorer(_PrefixScorer):
    """Total log-likelihood (nats) under a Mixtral causal LM, with a prefix-sharing ISM method.

    A variant's tokens before its first differing one have the reference's log-probabilities;
    only the rest are computed. Same numbers as :func:`genolm.interpret.ism.lm_scorer`.

    Args:
        model: a ``MixtralForCausalLM``.
        tokenizer: its tokenizer.
        device: ``auto``, ``cpu``, ``cuda``.
        group_rows: mutants per trunk call.

    """

    def __init__(self, model, tokenizer, device: str = "auto", group_rows: int = GROUP_ROWS) -> None:
        max_pos = max_positions(model)
        super().__init__(model, tokenizer, max_pos, device, group_rows)
        self._ref: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _token_logp(self, hidden: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``log p(ids[:, t] | ...)`` for ``t >= 1`` from ``hidden[:, t - 1]`` (0 at pads), float64."""
        real = mask[:, 1:].bool()
        out = torch.zeros(real.shape, dtype=torch.float64, device=hidden.device)
        out[real] = token_log_probs(hidden[:, :-1][real], self.net.lm_head.weight, ids[:, 1:][real]).double()
        return out

    def _whole(self, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        hidden, _, _ = mixtral_trunk(self.net, ids, mask)
        return self._token_logp(hidden, ids, mask).sum(1).cpu().numpy()

    def _reference(self, ids: torch.Tensor, hidden: torch.Tensor) -> float:
        logp = self._token_logp(hidden, ids, torch.ones_like(ids))[0]
        self._ref = (ids[0], hidden[0], torch.cat((logp.new_zeros(1), logp.cumsum(0))))
        return float(logp.sum())

    def _group(self, ids: torch.Tensor, mask: torch.Tensor, shared: int, prefix: list | None) -> np.ndarray:
        ref_ids, ref_hidden, cum = self._ref
        hidden, _, _ = mixtral_trunk(self.net, ids, prefix=prefix)
        if shared:  # the state before the tail predicts its first token
            n = len(ids)
            hidden = torch.cat((ref_hidden[shared - 1].expand(n, 1, -1), hidden), dim=1)
            ids = torch.cat((ref_ids[shared - 1].expand(n, 1), ids), dim=1)
            mask = torch.cat((mask.new_ones(n, 1), mask), dim=1)
        # cum[t] is the reference's log-likelihood of tokens 1 .. t - 1, shared by the variants
        return (cum[max(shared - 1, 0)] + self._token_logp(hidden, ids, mask).sum(1)).cpu().numpy()
