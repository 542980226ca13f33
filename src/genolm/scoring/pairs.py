"""One forward pass over a batch of ref/alt pairs that computes their shared prefix once.

A variant window pair differs only from the variant onwards: in a causal LM every position before
the first differing token has the same hidden state, keys and values in both windows, and the
same next-token log-probability. :func:`forward_pairs` therefore runs the reference windows in
full, keeps their keys and values, and runs the alternative windows only from the batch's
shortest common token prefix on, attending to the reference's cached prefix (for centred SNV
windows that is about half of the alternative's tokens). The log-likelihood ratio sums only the
positions where the two windows can differ; the language-model head runs only on real (non-pad)
positions. Results equal two independent forward passes to float32 rounding (tests).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import MixtralForCausalLM, PreTrainedModel

from genolm.models.fast.fused_loss import token_log_probs
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk

Pooling = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, str], torch.Tensor]


Batch = tuple[torch.Tensor, torch.Tensor]  # (input_ids, mask), right-padded


def shared_prefix_length(ref: Batch, alt: Batch) -> int:
    """Tokens that every pair of the batch shares from the start.

    At least one alternative token is left to run; 0 when some pair differs at the first token.
    """
    (r_ids, r_mask), (a_ids, a_mask) = ref, alt
    m = min(r_ids.shape[1], a_ids.shape[1])
    differ = (r_ids[:, :m] != a_ids[:, :m]) | (r_mask[:, :m] == 0) | (a_mask[:, :m] == 0)
    first = torch.where(differ.any(1), differ.int().argmax(1), m)
    return max(0, min(int(first.min()), a_ids.shape[1] - 1))


def _token_logp(model: PreTrainedModel, hidden: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                start: int) -> torch.Tensor:
    """``log p(ids[:, t] | ...)`` for ``t > start`` (0 at pads), the head run on real tokens only."""
    target = ids[:, start + 1 :]
    real = mask[:, start + 1 :].bool()
    out = torch.zeros(target.shape, dtype=torch.float32, device=hidden.device)
    rows = hidden[:, start:-1][real]
    out[real] = token_log_probs(rows, model.lm_head.weight, target[real])
    return out


def fast_pairs_supported(model: PreTrainedModel, pooling: str) -> bool:
    """Whether :func:`forward_pairs` applies: genolm's kernels on, a Mixtral LM, a hidden-state pooling."""
    return pooling != "logits_max" and isinstance(model, MixtralForCausalLM) and lean_trunk(model)


@torch.inference_mode()
def forward_pairs(model: PreTrainedModel, ref: Batch, alt: Batch, pooling: str, pool: Pooling,
                  likelihood: bool = True) -> dict[str, torch.Tensor]:
    """Pooled embeddings of both windows and, with ``likelihood``, ``ref_ll`` and ``llr``.

    Args:
        model: a ``MixtralForCausalLM``.
        ref: ``(input_ids, mask)`` of the reference windows, right-padded.
        alt: ``(input_ids, mask)`` of the alternative windows, right-padded, same number of rows.
        pooling: ``mean``, ``max`` or ``last``.
        pool: the pooling function ``(hidden, logits, mask, pooling) -> [N, H]``.
        likelihood: also compute log-likelihoods (runs the language-model head).

    Returns:
        ``emb_ref``, ``emb_alt`` and, with ``likelihood``, ``ref_ll`` and ``llr`` (float64).

    """
    (r_ids, r_mask), (a_ids, a_mask) = ref, alt
    shared = shared_prefix_length(ref, alt)
    h_ref, _, kv = mixtral_trunk(model, r_ids, keep_kv=shared > 0)
    prefix = [(k[:, :, :shared], v[:, :, :shared]) for k, v in kv] if shared else None
    h_alt, _, _ = mixtral_trunk(model, a_ids[:, shared:], prefix=prefix)
    h_alt = torch.cat((h_ref[:, :shared], h_alt), dim=1)
    out = {"emb_ref": pool(h_ref.float(), h_ref, r_mask, pooling),
           "emb_alt": pool(h_alt.float(), h_alt, a_mask, pooling)}
    if likelihood:
        lp_ref = _token_logp(model, h_ref, r_ids, r_mask, 0).double()
        start = max(shared - 1, 0)  # positions before it predict the same tokens from the same states
        lp_alt = _token_logp(model, h_alt, a_ids, a_mask, start).double()
        out["ref_ll"] = lp_ref.sum(1)
        out["llr"] = lp_alt.sum(1) - lp_ref[:, start:].sum(1)
    return out
