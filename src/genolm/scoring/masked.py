"""Zero-shot variant-effect scores from a masked DNA LM (BERT, ESM, DNABERT-2, Nucleotide Transformer).

:func:`score_masked_variants` returns the same table as
:func:`genolm.scoring.effects.score_variants` for causal LMs:

- ``l2`` / ``cosine``: distance between the pooled last hidden states (backbone output) of the
  unmasked ref and alt windows (pooling ``mean``, ``max``, ``last``, or ``logits_max`` over the
  masked-LM head's logits).
- ``llr``: the **masked-marginal** log-likelihood ratio (Meier et al. 2021). Both windows are
  tokenized; the tokens they share from the start and from the end are the context, the tokens
  in between (the *span*) are the variant. The span is replaced by mask tokens, and each
  allele's span tokens are scored at their masked positions::

      llr = sum_j log p(alt_j | context, span masked) - sum_j log p(ref_j | context, span masked)

  With a one-token-per-base tokenizer and a single-base substitution the span is the one variant
  position and both masked inputs are the same: this is exactly Meier et al.'s masked marginal,
  ``log p(alt) - log p(ref)`` at the masked variant position in the reference context. With
  multi-base tokens (BPE, k-mers) the span is every token whose tokenization differs between
  the alleles (at least the tokens overlapping the variant); the score is then a pseudo-log-
  likelihood over that span: all span tokens are masked at once and scored independently given
  the shared context (no chain rule inside the span). When the alleles tokenize to spans of
  different lengths (indels, or BPE merges that change) each allele is scored with its own
  number of masks. ``ref_ll`` is the reference's span score (the first sum).

These are plain functions over an ``nn.Module`` and tensors; ``genolm-score`` calls
:func:`score_masked_variants` when ``model_path`` declares a ``*ForMaskedLM``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerFast

from genolm.errors import GenolmError
from genolm.inference.batches import pad_batch, pool
from genolm.scoring.effects import SCORES, check_pairs, score_pairs


def variant_span(ref: Sequence[int], alt: Sequence[int]) -> tuple[int, int, int]:
    """``(start, ref_end, alt_end)``: tokens ``ref[start:ref_end]`` and ``alt[start:alt_end]`` differ.

    ``start`` is the length of the common prefix, and the common suffix is as long as possible
    without overlapping it; identical rows give an empty span.
    """
    start = 0
    limit = min(len(ref), len(alt))
    while start < limit and ref[start] == alt[start]:
        start += 1
    end = 0
    while end < limit - start and ref[len(ref) - 1 - end] == alt[len(alt) - 1 - end]:
        end += 1
    return start, len(ref) - end, len(alt) - end


def masked_rows(ref: Sequence[int], alt: Sequence[int], mask_id: int
                ) -> tuple[list[int], list[int], list[int], list[int], int]:
    """The two masked inputs of one pair and the tokens each is scored on.

    Returns:
        ``(ref_input, alt_input, ref_span, alt_span, start)``: the reference and the alternative
        with their span replaced by ``mask_id`` (the same list when the spans are as long), the
        span tokens to score, and the first span position.

    """
    start, r_end, a_end = variant_span(ref, alt)
    ref_in = list(ref[:start]) + [mask_id] * (r_end - start) + list(ref[r_end:])
    alt_in = list(alt[:start]) + [mask_id] * (a_end - start) + list(alt[a_end:])
    return ref_in, alt_in, list(ref[start:r_end]), list(alt[start:a_end]), start


def span_log_prob(logits: torch.Tensor, start: int, tokens: Sequence[int]) -> torch.Tensor:
    """``sum_j log softmax(logits[start + j])[tokens[j]]`` (float64; 0 for an empty span)."""
    if not len(tokens):
        return torch.zeros((), dtype=torch.float64, device=logits.device)
    logp = F.log_softmax(logits[start : start + len(tokens)].float(), dim=-1)
    target = torch.as_tensor(list(tokens), device=logits.device).unsqueeze(-1)
    return logp.gather(-1, target).double().sum()


def _backbone_states(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Last hidden states ``(N, T, H)`` of the masked LM's backbone."""
    out = model.base_model(input_ids=ids, attention_mask=mask)
    return out[0]


@torch.inference_mode()
def masked_llr(model: nn.Module, ref: list[list[int]], alt: list[list[int]], mask_id: int, pad_id: int,
               dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ref_ll, llr)`` per pair of token rows: the masked-marginal scores of the module docstring.

    One forward pass over the masked inputs; a pair whose two masked inputs are equal (SNVs,
    equal-length spans) runs one row, not two.
    """
    rows: list[list[int]] = []
    jobs = []
    for r, a in zip(ref, alt, strict=True):
        r_in, a_in, r_span, a_span, start = masked_rows(r, a, mask_id)
        rows.append(r_in)
        if a_in != r_in:
            rows.append(a_in)
        jobs.append((len(rows) - 1 - (a_in != r_in), len(rows) - 1, start, r_span, a_span))
    ids, mask = (x.to(dev) for x in pad_batch(rows, pad_id))
    logits = model(input_ids=ids, attention_mask=mask).logits
    ref_ll, alt_ll = [], []
    for r_row, a_row, start, r_span, a_span in jobs:
        ref_ll.append(span_log_prob(logits[r_row], start, r_span))
        alt_ll.append(span_log_prob(logits[a_row], start, a_span))
    ref_t, alt_t = torch.stack(ref_ll), torch.stack(alt_ll)
    return ref_t, alt_t - ref_t


@torch.inference_mode()
def masked_embeddings(model: nn.Module, rows: list[list[int]], pad_id: int, dev: torch.device,
                      pooling: str) -> torch.Tensor:
    """Pooled embeddings ``(N, H)`` of unmasked token rows (``logits_max``: the head's logits)."""
    ids, mask = (x.to(dev) for x in pad_batch(rows, pad_id))
    if pooling == "logits_max":
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        return pool(logits, logits, mask, pooling)
    hidden = _backbone_states(model, ids, mask).float()
    return pool(hidden, hidden, mask, pooling)


def score_masked_variants(model: nn.Module, tokenizer: PreTrainedTokenizerFast, ref: Sequence[str],
                          alt: Sequence[str], ids: Sequence[str] | None = None,
                          groups: Sequence[str] | None = None, scores: Sequence[str] = SCORES,
                          pooling: str = "mean", batch_size: int = 64, device: str | None = "auto",
                          progress: bool = True, workers: int | None = None) -> pd.DataFrame:
    """Score ref/alt window pairs with a masked LM (``*ForMaskedLM``).

    Args:
        model: a transformers masked LM (``base_model`` backbone, ``.logits`` output).
        tokenizer: its tokenizer (pad and mask tokens required).
        ref: reference windows (any case).
        alt: alternative windows, as many as ``ref`` (lengths may differ).
        ids: optional pair ids copied into the output.
        groups: optional group labels copied into the output.
        scores: any of ``l2``, ``cosine``, ``llr`` (masked-marginal; see the module docstring).
        pooling: ``mean``, ``max``, ``last`` or ``logits_max`` (embedding scores only).
        batch_size: pairs per batch.
        device: ``auto``, ``cpu``, ``cuda``, ...
        progress: show a progress bar.
        workers: on CPU, batches scored side by side on this many threads.

    Returns:
        DataFrame with ``id``, ``group`` and one column per score (``llr`` adds ``ref_ll``).

    """
    check_pairs(ref, alt, scores, pooling)
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise GenolmError("a masked LM's tokenizer needs a mask and a pad token")
    embed = bool({"l2", "cosine"} & set(scores))

    def one(r: list[list[int]], a: list[list[int]], dev: torch.device) -> dict[str, torch.Tensor]:
        got: dict[str, torch.Tensor] = {}
        if embed:
            emb = masked_embeddings(model, r + a, tokenizer.pad_token_id, dev, pooling)
            e_r, e_a = emb[: len(r)], emb[len(r) :]
            got["l2"] = (e_r - e_a).norm(dim=-1)
            got["cosine"] = 1 - F.cosine_similarity(e_r, e_a, dim=-1)
        if "llr" in scores:
            got["ref_ll"], got["llr"] = masked_llr(model, r, a, tokenizer.mask_token_id,
                                                   tokenizer.pad_token_id, dev)
        return got

    return score_pairs(model, tokenizer, ref, alt, one, ids, groups, scores, batch_size, device, progress,
                       workers)
