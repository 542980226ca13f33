"""Batches of DNA windows through a causal LM: tokenize and pad, pool, one forward pass.

Shared by every lab that runs a model over windows (scoring, generation, design, interpretation).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.data.tokenizers import encode_many
from genolm.errors import GenolmError
from genolm.models.fast.fused_loss import IGNORE, token_log_probs
from genolm.models.fast.mixtral import mixtral_hidden_states
from genolm.models.fast.switch import lean_trunk

POOLINGS = ("mean", "max", "last", "logits_max")


def max_positions(model: PreTrainedModel) -> int:
    """Longest input in tokens the model accepts (``max_position_embeddings``; unbounded if absent)."""
    return int(getattr(model.config, "max_position_embeddings", None) or 1 << 30)


def token_rows(tokenizer: PreTrainedTokenizerFast, seqs: Sequence[str], limit: int,
               names: Sequence[str] | None = None, what: str = "sequence") -> list[list[int]]:
    """Token ids of every sequence (upper case, with special tokens), refusing any longer than ``limit``.

    Raises:
        GenolmError: naming the first ``what`` (by ``names``, else its 1-based index) that
            tokenizes to more than ``limit`` tokens.

    """
    rows = encode_many(tokenizer, [s.upper() for s in seqs])
    for i, row in enumerate(rows):
        if len(row) > limit:
            name = names[i] if names is not None else f"#{i + 1}"
            raise GenolmError(f"{what} '{name}' ({len(seqs[i])} b) tokenizes to {len(row)} tokens, more "
                              f"than the model's {limit} positions; use shorter sequences")
    return rows


def encode(tokenizer: PreTrainedTokenizerFast, seqs: Sequence[str], max_positions: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize (upper case, with special tokens) and right-pad; returns ``(input_ids, mask)``."""
    return pad_batch(token_rows(tokenizer, seqs, max_positions, what="window"), tokenizer.pad_token_id)


def pool(hidden: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool per-token vectors ``(N, T, D)`` over real tokens into ``(N, D)``."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "mean":
        return (hidden * m).sum(1) / m.sum(1)
    if pooling == "last":
        return hidden[torch.arange(len(hidden)), mask.sum(1) - 1]
    source = logits if pooling == "logits_max" else hidden
    return source.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(1)


def sequence_log_likelihood(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over real tokens after the first of ``log p(token | previous tokens)``, per row."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logp = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (token_logp.double() * mask[:, 1:]).sum(1)


@torch.no_grad()
def forward_batch(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, pooling: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: ``(pooled embeddings, sequence log-likelihoods)``.

    With genolm's kernels switched on (:func:`genolm.models.fast.switch.lean_trunk`) the trunk
    of a Mixtral causal LM runs through
    :func:`genolm.models.fast.mixtral.mixtral_hidden_states` and the likelihood through chunked
    :func:`genolm.models.fast.fused_loss.token_log_probs` (no full log-softmax); same numbers.
    """
    if pooling != "logits_max" and lean_trunk(model):
        hidden, _ = mixtral_hidden_states(model, ids, mask, router_loss=False)
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
        logp = token_log_probs(hidden[:, :-1].reshape(-1, hidden.shape[-1]), model.lm_head.weight,
                               target.reshape(-1)).view_as(target)
        return pool(hidden.float(), hidden, mask, pooling), logp.double().sum(1)
    hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    logits = model.get_output_embeddings()(hidden).float()
    return pool(hidden.float(), logits, mask, pooling), sequence_log_likelihood(logits, ids, mask)


def resolve_device(device: str | None) -> torch.device:
    """``auto``/``None`` picks CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pad_batch(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists into ``(input_ids, mask)`` (one NumPy fill, no per-row tensors)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    mask = np.arange(lengths.max()) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))
