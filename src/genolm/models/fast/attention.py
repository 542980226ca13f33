"""Self-attention of transformers' ``MixtralAttention`` weights, lean: fused QKV, complex rotary.

- one fused QKV matmul per layer instead of three; the rotary embedding of q and k as one
  complex multiply (q/k projection rows reordered so rotary partners sit side by side), tables
  cached per length and dtype;
- training and GPUs: ``scaled_dot_product_attention`` with ``is_causal`` for packed batches (no
  mask tensor; for Mistral-DNA-1M's 8-wide heads on CPU 3.6x faster than materialising the
  score matrix with its backward) and a boolean mask only when the batch is padded;
- inference on CPU over short windows (scoring, the design oracle): the score matrix
  materialised a few batch rows at a time, small enough for a core's L2 cache, through batched
  matmuls (:func:`attend_in_blocks`); the CPU flash kernel is bound by per-head overhead there.
"""

from __future__ import annotations

import functools
import weakref

import torch
import torch.nn.functional as F
from torch import nn

BLOCK_BYTES = 1 << 20  # score matrix per block of batch rows (a core's L2 cache)
BLOCKS_UP_TO = 128  # longest key sequence attended in blocks on CPU
# rotary tables per rotary-embedding module, then per (length, device, dtype); entries go with
# the module (an explicit cache, not attributes slipped into the model)
_ROPE_TABLES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype matmuls on ``x`` run in: autocast's if enabled on its device, else its own."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


@torch.inference_mode(False)  # cached tensors must also serve autograd later (training)
def rope_tables(net: nn.Module, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Rotary table ``[length, head_dim / 2]`` of the model (cached).

    Complex for float32/64 inputs, else the ``(cos, sin)`` pairs as a trailing dimension of 2.
    """
    rotary = net.model.rotary_emb
    cache = _ROPE_TABLES.setdefault(rotary, {})
    key = (length, device, dtype)
    if key not in cache:
        freqs = torch.arange(length, device=device, dtype=torch.float32)[:, None] * rotary.inv_freq.to(device)
        scale = rotary.attention_scaling
        if dtype in (torch.float32, torch.float64):
            cache[key] = torch.polar(torch.full_like(freqs, scale), freqs).to(
                torch.complex64 if dtype == torch.float32 else torch.complex128)
        else:
            cache[key] = torch.stack((freqs.cos() * scale, freqs.sin() * scale), dim=-1).to(dtype)
    return cache[key]


@functools.lru_cache(maxsize=16)
@torch.inference_mode(False)
def _pair_order(d: int, device: torch.device) -> torch.Tensor:
    """Row order that puts rotary partners ``i`` and ``i + d/2`` of a head side by side."""
    half = torch.arange(d // 2, device=device)
    return torch.stack((half, half + d // 2), dim=-1).flatten()


def _rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x`` ``[B, T, heads, d]`` whose partners sit side by side.

    transformers rotates the pair ``(x_i, x_{i+d/2})``; with the q/k projection rows reordered by
    :func:`_pair_order` the pair is adjacent and the rotation is one complex multiplication (the
    query-key dot products do not depend on the order of the head dimensions).
    """
    pairs = x.unflatten(-1, (-1, 2))
    if table.is_complex():
        return torch.view_as_real(torch.view_as_complex(pairs) * table[:, None]).flatten(-2)
    cos, sin = table[:, None, :, 0], table[:, None, :, 1]
    x0, x1 = pairs.unbind(-1)
    return torch.stack((x0 * cos - x1 * sin, x1 * cos + x0 * sin), dim=-1).flatten(-2)


def attend_in_blocks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                     scale: float) -> torch.Tensor:
    """Attention with the score matrix materialised for a few batch rows at a time.

    Same arguments and result as :func:`_attend`. Keys may outnumber queries (a cached prefix):
    without a mask, query ``i`` sees keys up to ``i + S - T``. For short windows and narrow heads
    (SNP windows of ~44 tokens, 8-wide heads) this beats the CPU flash kernel, which is bound by
    per-head overhead (experiments/benchmarks/RESULTS.md).
    """
    b, h, t, d = q.shape
    s = k.shape[2]
    if mask is None:
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
    bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
    out = torch.empty(b, h, d, t, dtype=q.dtype, device=q.device)
    step = max(1, BLOCK_BYTES // (h * t * s * q.element_size()))
    for lo in range(0, b, step):
        rows, n = slice(lo, lo + step), min(step, b - lo)
        block_bias = (bias[rows] if bias.dim() == 4 else bias).expand(n, h, t, s).reshape(n * h, t, s)
        scores = torch.baddbmm(block_bias, q[rows].reshape(n * h, t, d),
                               k[rows].reshape(n * h, s, d).transpose(1, 2), alpha=scale)
        probs = torch.softmax(scores, dim=-1)
        # out^T = v^T probs^T: an 8-wide output is slow for a GEMM, a T-wide one is not
        torch.bmm(v[rows].transpose(-1, -2).reshape(n * h, d, s), probs.transpose(1, 2),
                  out=out[rows].view(n * h, d, t))
    return out.transpose(-1, -2)


def blocks_apply(q: torch.Tensor, k: torch.Tensor) -> bool:
    """Which of genolm's two attention kernels runs (not the fast switch: both are genolm's).

    :func:`attend_in_blocks` for inference on CPU over short key sequences, where it is faster;
    else ``scaled_dot_product_attention`` (training, GPUs, long windows).
    """
    return q.device.type == "cpu" and not torch.is_grad_enabled() and k.shape[2] <= BLOCKS_UP_TO


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
            scale: float, dropout: float = 0.0) -> torch.Tensor:
    """Causal attention over ``[B, heads, T, d]`` (keys ``[B, heads, S, d]``).

    ``mask`` is boolean ``[B, 1, T, S]`` or ``[T, S]``, or None for plain causal (query ``i`` sees
    keys up to ``i + S - T``).
    """
    if dropout == 0.0 and blocks_apply(q, k):
        return attend_in_blocks(q, k, v, mask, scale)
    t, s = q.shape[2], k.shape[2]
    if mask is None and 1 < t != s:  # is_causal aligns top-left; a cached prefix needs bottom-right
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                          is_causal=mask is None and t > 1, scale=scale)


def hf_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                 **_: object) -> tuple[torch.Tensor, None]:
    """The genolm attention kernel in transformers' ``AttentionInterface`` signature.

    transformers has projected and rotated ``query`` ``[B, heads, T, d]``, ``key`` and ``value``
    ``[B, kv_heads, S, d]`` (a cache included) and built ``attention_mask`` with ``sdpa_mask``
    (boolean, True = attend; None = causal). Returns ``([B, T, heads, d], None)``.
    """
    n_q, n_kv = query.shape[1], key.shape[1]
    if n_kv != n_q:
        key, value = key.repeat_interleave(n_q // n_kv, dim=1), value.repeat_interleave(n_q // n_kv, dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if query.shape[2] == 1 and attention_mask is None and dropout == 0.0:
        # a decoding step sees every cached key: no mask to build, nothing to block
        out = F.scaled_dot_product_attention(query, key, value, scale=scale)
    else:
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            # a query that may see no key (left padding) would turn into NaN and spread through
            # the masked products: let it see every key, its output is never used
            attention_mask = attention_mask | ~attention_mask.any(-1, keepdim=True)
        out = _attend(query, key, value, attention_mask, scale, dropout)
    return out.transpose(1, 2), None


def attention(attn: nn.Module, x: torch.Tensor, rope: torch.Tensor, mask: torch.Tensor | None,
              prefix: tuple[torch.Tensor, torch.Tensor] | None = None, keep: list | None = None,
              queries: torch.Tensor | None = None) -> torch.Tensor:
    """Self-attention of one ``MixtralAttention`` (its q/k/v/o weights) over ``x`` ``[B, T, H]``.

    ``rope`` is :func:`rope_tables` for these positions. ``prefix`` holds keys and values
    ``[B, kv_heads, P, d]`` of ``P`` earlier positions that every query also sees (``x`` then sits
    at positions ``P ..``; pads, if any, must be at the end); ``keep`` receives this call's keys
    and values (prefix included; keys in the side-by-side pair order of :func:`_rotate`).
    ``queries`` ``[B]`` (indices into ``x``'s positions) keeps one query per row: every position
    is still a key and value, and the result is ``[B, 1, H]`` (a classifier's last token).
    """
    b, t, _ = x.shape
    d = attn.head_dim
    n_q, n_kv = attn.q_proj.out_features // d, attn.k_proj.out_features // d
    order = _pair_order(d, x.device)
    weight = torch.cat((attn.q_proj.weight.unflatten(0, (n_q, d))[:, order].flatten(0, 1),
                        attn.k_proj.weight.unflatten(0, (n_kv, d))[:, order].flatten(0, 1),
                        attn.v_proj.weight))
    qk, v = F.linear(x, weight).split(((n_q + n_kv) * d, n_kv * d), dim=-1)
    q, k = _rotate(qk.unflatten(-1, (n_q + n_kv, d)), rope).transpose(1, 2).split((n_q, n_kv), dim=1)
    v = v.view(b, t, n_kv, d).transpose(1, 2)
    if prefix is not None:
        k, v = torch.cat((prefix[0], k), dim=2), torch.cat((prefix[1], v), dim=2)
        mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - t)
    if keep is not None:
        keep.append((k, v))
    if queries is not None:
        rows = torch.arange(b, device=x.device)
        q = q[rows, :, queries].unsqueeze(2)
        if mask is None:
            mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - t)
        mask = (mask[rows, :, queries] if mask.dim() == 4 else mask[queries][:, None]).unsqueeze(2)
        t = 1
    if n_kv != n_q:
        k, v = k.repeat_interleave(n_q // n_kv, dim=1), v.repeat_interleave(n_q // n_kv, dim=1)
    out = _attend(q, k, v, mask, attn.scaling)
    return attn.o_proj(out.transpose(1, 2).reshape(b, t, n_q * d))
