"""Bits per base of a causal DNA LM on independent windows, comparable with a Markov chain.

Each window is scored on its own: the model sees one start token and then the window's tokens,
and every DNA token is predicted from what precedes it inside the window. Special tokens are
never targets, and the next-token distribution is renormalised over the non-special tokens, so
the figure is the model's code length of the DNA alone (no cost for predicting where a window
ends), in the same units as :class:`genolm.baselines.markov.MarkovChains`. With a multi-base
(BPE) tokenizer the window's canonical tokenization is scored, an upper bound on its code length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.data.tokenizers import bases_per_token, encode_many
from genolm.errors import GenolmError
from genolm.export import training_record
from genolm.inference.batches import max_positions, pad_batch

STARTS = ("sep", "bos")
LN2 = float(np.log(2.0))


def start_token(tokenizer: PreTrainedTokenizerFast, start: str) -> int:
    """Id of the token each window starts from.

    ``sep``: the separator genolm's packed pretraining puts before every chunk (EOS/[SEP]);
    ``bos``: the tokenizer's BOS/[CLS], for models trained on ``[CLS] sequence [SEP]`` rows.
    """
    if start not in STARTS:
        raise GenolmError(f"start={start!r}: choose one of {', '.join(STARTS)}")
    token = tokenizer.eos_token_id if start == "sep" else tokenizer.bos_token_id
    if token is None:
        raise GenolmError(f"start={start}: the tokenizer has no {'EOS' if start == 'sep' else 'BOS'} token")
    return int(token)


def special_token_mask(ids: Iterable[int | None], size: int) -> torch.Tensor:
    """``(size,)`` bool mask, True at the special-token ``ids`` (``None`` and out-of-range ids ignored).

    ``size`` is the width of the model's logits (``config.vocab_size``), which may exceed the
    tokenizer's length when the embedding was padded.
    """
    mask = torch.zeros(size, dtype=torch.bool)
    mask[[i for i in ids if i is not None and 0 <= i < size]] = True
    return mask


def resolve_start(start: str, model_path: str | Path) -> str:
    """``sep`` or ``bos``: ``start`` itself, or for ``auto`` what the model was trained with.

    ``auto`` gives ``sep`` when a genolm pretraining run folder beside the model records its data
    (:func:`genolm.export.training_record`) and that run packed its chunks (chunks joined by
    [SEP], so every chunk the model saw followed a [SEP]); ``bos`` for any other model (an HF
    folder without a genolm run record, e.g. Mistral-DNA, trained on ``[CLS] seq [SEP]`` rows).
    Shared by ``genolm-eval-lm`` (scoring) and ``genolm-generate`` (sampling).
    """
    return start_from_record(start, training_record(model_path) if start == "auto" else None)


def start_from_record(start: str, record: dict[str, Any] | None) -> str:
    """:func:`resolve_start` given the model's training record (already read) instead of its path."""
    if start != "auto":
        if start not in STARTS:
            raise GenolmError(f"start={start!r}: choose one of auto, {', '.join(STARTS)}")
        return start
    return "sep" if record and record.get("packing", True) else "bos"


def start_rows(tokenizer: PreTrainedTokenizerFast, seqs: Sequence[str], start: str,
               max_positions: int | None, what: str = "sequence") -> list[list[int]]:
    """Token ids of every sequence (upper-cased) after the ``start`` token (:func:`start_token`).

    Raises:
        GenolmError: a row is longer than ``max_positions`` (``None``: no limit).

    """
    first = start_token(tokenizer, start)
    rows = [[first, *row] for row in encode_many(tokenizer, [s.upper() for s in seqs], False)]
    longest = max(map(len, rows), default=0)
    if max_positions is not None and longest > max_positions:
        raise GenolmError(f"a {what} tokenizes to {longest} positions (with its start token), more "
                          f"than the model's max_position_embeddings={max_positions}; use shorter {what}s")
    return rows


def dna_nll(logits: torch.Tensor, target: torch.Tensor, special: torch.Tensor, valid: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL (nats) of each DNA target, next token renormalised over non-special tokens.

    Returns ``(nll, scored)``: ``scored`` is ``valid`` minus special-token targets, and ``nll`` is 0
    wherever a target is not scored (a special token's log-probability is -inf after masking).
    """
    safe = target.clamp(min=0)
    scored = valid & ~special[safe]
    logp = F.log_softmax(logits.float().masked_fill(special, float("-inf")), dim=-1)
    return -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1).masked_fill(~scored, 0.0), scored


def _batch_bits(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, special: torch.Tensor,
                span: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
    target = ids[:, 1:]
    nll, scored = dna_nll(logits, target, special, mask[:, 1:].bool())
    return nll.double().sum(1) / LN2, (span[target] * scored).sum(1)


@torch.no_grad()
def window_bits(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, windows: Sequence[str],
                start: str = "sep", batch_size: int = 64, ids: Sequence[str] | None = None
                ) -> pd.DataFrame:
    """Code length in bits of every window under ``model``.

    Args:
        model: a causal LM (``logits`` over the tokenizer's vocabulary).
        tokenizer: its tokenizer.
        windows: DNA strings (upper-cased here).
        start: token before each window (see :func:`start_token`).
        batch_size: windows per forward pass.
        ids: window names (default ``w0, w1, ...``).

    Returns:
        DataFrame with ``id, bases, bits, bits_per_base`` (``bases``: bases the scored tokens cover).

    """
    if len(windows) == 0:
        raise GenolmError("no window to score")
    tokens = start_rows(tokenizer, windows, start, max_positions(model), "window")
    device = next(model.parameters()).device
    width = int(getattr(model.config, "vocab_size", None) or len(tokenizer))
    special = special_token_mask(tokenizer.all_special_ids, width).to(device)
    span = torch.from_numpy(_pad_to(bases_per_token(tokenizer), width)).to(device)
    order = np.argsort([len(t) for t in tokens], kind="stable")
    bits, bases = np.zeros(len(tokens)), np.zeros(len(tokens), dtype=np.int64)
    model.eval()
    for lo in range(0, len(order), batch_size):
        rows = order[lo:lo + batch_size]
        batch, mask = pad_batch([tokens[i] for i in rows], tokenizer.pad_token_id)
        b, n = _batch_bits(model, batch.to(device), mask.to(device), special, span)
        bits[rows], bases[rows] = b.cpu().numpy(), n.cpu().numpy()
    names = list(ids) if ids is not None else [f"w{i}" for i in range(len(tokens))]
    return pd.DataFrame({"id": names, "bases": bases, "bits": bits,
                         "bits_per_base": bits / np.maximum(bases, 1)})


def _pad_to(values: np.ndarray, size: int) -> np.ndarray:
    """``values`` zero-padded (or cut) to ``size`` entries."""
    out = np.zeros(size, dtype=values.dtype)
    out[: min(size, len(values))] = values[:size]
    return out


def total_bits_per_base(table: pd.DataFrame) -> float:
    """Bits per base over all windows of a :func:`window_bits` table (base-weighted)."""
    return float(table["bits"].sum() / max(int(table["bases"].sum()), 1))
