"""A lean training forward for transformers' ``MixtralForCausalLM``, over the same parameters.

:func:`mixtral_hidden_states` reads the weights of an unchanged ``MixtralForCausalLM`` (so every
checkpoint, export and Mistral-DNA file keeps loading) and computes the same final hidden states
and router load-balancing loss as transformers, with less work per step:

- attention as :func:`genolm.models.fast.attention.attention`: one fused QKV matmul per layer instead
  of three, the rotary embedding as one complex multiply, ``scaled_dot_product_attention``
  without a mask tensor for packed batches, and blocked materialised scores for short windows
  at inference on CPU;
- mixture-of-experts by sorting token-expert pairs once per layer and running one gate/up and one
  down matmul per non-empty expert on contiguous rows (one gather, one ``index_add_``), instead
  of a boolean mask and ``torch.where`` per expert; with one expert per token (Mistral-DNA) no
  router softmax and no weights (they are exactly 1), and a permutation back instead of a sum;
- ``F.rms_norm`` instead of four element-wise passes;
- no output capture hooks and no per-layer dataclasses.

:func:`mixtral_trunk` is that pass itself; it can also return every layer's keys and values and
continue from a cached prefix of them (variant scoring shares the ref window's prefix).

The logits are left to :func:`genolm.models.fast.fused_loss.linear_cross_entropy`, which never
materialises the full ``tokens x vocab`` log-softmax. Outputs match transformers within 1e-4 in
fp32 (``tests/unit/test_fast_mixtral.py``). Model-parallel wrappers that gather parameters in module
hooks (FSDP) need transformers' own forward: see :mod:`genolm.models.fast.switch`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genolm.models.fast.attention import attention, compute_dtype, rope_tables


def _segments(counts: list[int]):
    """``(expert, rows slice)`` of every expert that received rows, in expert-sorted order."""
    start = 0
    for expert, n in enumerate(counts):
        if n:
            yield expert, slice(start, start + n)
        start += n


def _expert_loop(bank: nn.Module, picked: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Autograd reference for any activation: one gate/up and one down matmul per expert."""
    gate_up, down = bank.gate_up_proj.unbind(0), bank.down_proj.unbind(0)
    pieces = []
    for e, rows in _segments(counts):
        g, u = F.linear(picked[rows], gate_up[e]).chunk(2, dim=-1)
        pieces.append(F.linear(bank.act_fn(g) * u, down[e]))
    return torch.cat(pieces)


class _SwiGLUExperts(torch.autograd.Function):
    """SwiGLU experts over expert-sorted rows with hand-written backward.

    Weight gradients are written straight into one ``[E, ...]`` buffer per bank, instead of
    autograd stacking per-expert slices (which zero-fills and copies the whole bank each step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, counts: list[int]):
        dtype = compute_dtype(x)
        ctx.in_dtype = x.dtype
        x = x.to(dtype)
        hidden = torch.empty(x.shape[0], gate_up.shape[1], dtype=dtype, device=x.device)
        out = torch.empty(x.shape[0], down.shape[1], dtype=dtype, device=x.device)
        for e, rows in _segments(counts):
            gu = torch.mm(x[rows], gate_up[e].to(dtype).t(), out=hidden[rows])
            g, u = gu.chunk(2, dim=-1)
            torch.mm(F.silu(g) * u, down[e].to(dtype).t(), out=out[rows])
        ctx.save_for_backward(x, hidden, gate_up, down)
        ctx.counts = counts
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, hidden, gate_up, down = ctx.saved_tensors
        dtype, weight_grads = x.dtype, ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        grad_out = grad_out.to(dtype)
        grad_x = torch.empty_like(x)
        grad_gu = grad_down = None
        if weight_grads:
            grad_gu, grad_down = torch.empty_like(gate_up), torch.empty_like(down)
            for e, n in enumerate(ctx.counts):
                if not n:  # experts that saw no token get a zero gradient
                    grad_gu[e], grad_down[e] = 0, 0
        for e, rows in _segments(ctx.counts):
            g, u = hidden[rows].chunk(2, dim=-1)
            act = F.silu(g)
            go = grad_out[rows]
            if weight_grads:
                grad_down[e] = torch.mm(go.t(), act * u)
            grad_a = torch.mm(go, down[e].to(dtype))
            d_hidden = torch.empty_like(hidden[rows])
            d_g, d_u = d_hidden.chunk(2, dim=-1)
            torch.ops.aten.silu_backward(grad_a * u, g, grad_input=d_g)
            torch.mul(grad_a, act, out=d_u)
            if weight_grads:
                grad_gu[e] = torch.mm(d_hidden.t(), x[rows])
            torch.mm(d_hidden, gate_up[e].to(dtype), out=grad_x[rows])
        return grad_x.to(ctx.in_dtype), grad_gu, grad_down, None


def sorted_experts(bank: nn.Module, x: torch.Tensor, flat: torch.Tensor, weights: torch.Tensor | None,
                   top_k: int, silu: bool) -> torch.Tensor:
    """Experts of ``bank`` (a ``MixtralExperts``) over tokens ``x`` ``[N, H]``, rows sorted by expert.

    ``flat`` ``[N * top_k]`` is each token's chosen experts, ``weights`` ``[N, top_k]`` their
    routing weights or None when every weight is exactly 1 (one expert per token).
    """
    order = torch.argsort(flat, stable=True)
    rows = order // top_k
    counts = torch.bincount(flat, minlength=bank.num_experts).tolist()
    picked = x.index_select(0, rows)  # backward: index_add_, cheaper than index_put_
    if silu:
        out = _SwiGLUExperts.apply(picked, bank.gate_up_proj, bank.down_proj, counts)
    else:
        out = _expert_loop(bank, picked, counts)
    if weights is None:  # every token once: a permutation back, no zero-fill and sum
        return torch.empty_like(x, dtype=out.dtype).index_copy_(0, rows, out)
    out = out * weights.reshape(-1).index_select(0, order)[:, None].to(out.dtype)
    return torch.zeros_like(x, dtype=out.dtype).index_add_(0, rows, out)


def experts(moe: nn.Module, x: torch.Tensor, silu: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse mixture-of-experts of one ``MixtralSparseMoeBlock`` over tokens ``x`` ``[N, H]``.

    ``silu`` (the config's ``hidden_act`` is SiLU) selects the hand-written SwiGLU kernel.

    Returns:
        ``(output [N, H], router_logits [N, E])``.

    """
    gate = moe.gate
    logits = F.linear(x, gate.weight)
    if gate.top_k == 1:
        # transformers divides the top probability by itself: the weight is exactly 1, and the
        # softmax's top expert is the logits' argmax
        flat, weights = logits.float().argmax(dim=-1), None
    else:
        weights, chosen = torch.topk(torch.softmax(logits.float(), dim=-1), gate.top_k, dim=-1)
        weights, flat = weights / weights.sum(dim=-1, keepdim=True), chosen.reshape(-1)
    return sorted_experts(moe.experts, x, flat, weights, gate.top_k, silu), logits


def hf_experts(bank: nn.Module, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
               top_k_weights: torch.Tensor) -> torch.Tensor:
    """The genolm expert dispatch in the signature of transformers' ``ExpertsInterface``.

    transformers' router has chosen ``top_k_index`` ``[N, k]`` with weights ``top_k_weights``;
    the rows are sorted by expert once and each expert runs one gate/up and one down matmul.
    """
    top_k = top_k_index.shape[-1]
    silu = bank.config.hidden_act in ("silu", "swish")
    out = sorted_experts(bank, hidden_states, top_k_index.reshape(-1), top_k_weights, top_k, silu)
    return out.to(hidden_states.dtype)


def load_balancing_loss(router_logits: list[torch.Tensor], top_k: int,
                        token_mask: torch.Tensor | None) -> torch.Tensor:
    """Switch-Transformer auxiliary loss over all layers, as transformers' Mixtral computes it."""
    n_exp = router_logits[0].shape[-1]
    logits = torch.stack(router_logits)  # [layers, N, E]
    probs = torch.softmax(logits.float(), dim=-1)
    chosen = torch.topk(probs, top_k, dim=-1).indices
    hits = torch.zeros_like(probs).scatter_(-1, chosen, 1.0)
    if token_mask is not None:
        w = token_mask.reshape(1, -1, 1).to(probs.dtype)
        hits, probs, rows = hits * w, probs * w, w.sum() * logits.shape[0]
    else:
        rows = float(logits.shape[0] * logits.shape[1])
    return n_exp * torch.sum(hits.sum(dim=(0, 1)) / rows * (probs.sum(dim=(0, 1)) / rows))


def _padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, 1, T, T]``: causal, keys must be real tokens, every query sees itself."""
    t = attention_mask.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=attention_mask.device).tril()
    keys = attention_mask.bool()[:, None, None, :]
    return (causal & keys) | torch.eye(t, dtype=torch.bool, device=attention_mask.device)


def mixtral_trunk(net: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                  prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None, keep_kv: bool = False,
                  last: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Final (normed) hidden states, router logits and (optionally) keys/values of every layer.

    Args:
        net: a transformers ``MixtralForCausalLM`` (only its weights are used).
        input_ids: ``[B, T]`` token ids.
        attention_mask: ``[B, T]`` with 1 for real tokens (right padding), or None when every
            position is real or pads only trail (real tokens never attend to later positions).
        prefix: per layer, keys and values ``[B, kv_heads, P, d]`` of ``P`` positions before
            ``input_ids`` (from an earlier call with ``keep_kv``); ``input_ids`` sit at positions
            ``P ..`` and ``attention_mask`` must be None.
        keep_kv: return every layer's keys and values (prefix included).
        last: ``[B]`` index of the one position per row whose final hidden state is wanted (a
            classifier's last real token): the last layer runs its queries and experts there only,
            ``hidden`` is ``[B, 1, H]`` and the last layer's router logits cover those rows.

    Returns:
        ``(hidden [B, T, H], router logits per layer, keys/values per layer or [])``.

    """
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None
    if prefix is not None and attention_mask is not None:
        raise ValueError("a prefix takes no attention_mask: pads must trail the real tokens")
    trunk = net.model
    h = trunk.embed_tokens(input_ids)
    start = prefix[0][0].shape[2] if prefix is not None else 0
    rope = rope_tables(net, start + input_ids.shape[1], h.device, compute_dtype(h))[start:]
    mask = _padding_mask(attention_mask) if attention_mask is not None else None
    eps, all_logits, kv = trunk.norm.variance_epsilon, [], []
    silu = net.config.hidden_act in ("silu", "swish")
    for i, layer in enumerate(trunk.layers):
        only = last if i == len(trunk.layers) - 1 else None
        normed = F.rms_norm(h, (h.shape[-1],), layer.input_layernorm.weight, eps)
        out = attention(layer.self_attn, normed, rope, mask, prefix[i] if prefix is not None else None,
                        kv if keep_kv else None, only)
        h = (h if only is None else h[torch.arange(len(h), device=h.device), only, None]) + out
        normed = F.rms_norm(h, (h.shape[-1],), layer.post_attention_layernorm.weight, eps)
        moe_out, logits = experts(layer.mlp, normed.reshape(-1, h.shape[-1]), silu)
        h = h + moe_out.view_as(h)
        all_logits.append(logits)
    return F.rms_norm(h, (h.shape[-1],), trunk.norm.weight, eps), all_logits, kv


def mixtral_hidden_states(net: nn.Module, input_ids: torch.Tensor,
                          attention_mask: torch.Tensor | None = None, router_loss: bool = True
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Final (normed) hidden states and router aux loss of a ``MixtralForCausalLM``.

    Args:
        net: a transformers ``MixtralForCausalLM`` (only its weights are used).
        input_ids: ``[B, T]`` token ids.
        attention_mask: ``[B, T]`` with 1 for real tokens (right padding), or None when every
            position is real (packed batches).
        router_loss: also return the load-balancing loss (else None).

    Returns:
        ``(hidden [B, T, H], aux_loss)``.

    """
    # an all-real mask is dropped inside mixtral_trunk; with it the loss equals the unmasked one
    h, all_logits, _ = mixtral_trunk(net, input_ids, attention_mask)
    if not router_loss:
        return h, None
    return h, load_balancing_loss(all_logits, net.model.layers[0].mlp.gate.top_k, attention_mask)
