"""Language-model head and cross-entropy in one pass, chunked over tokens.

The usual path materialises ``tokens x vocab`` logits, then a log-softmax of the same size, then
their gradients. :func:`linear_cross_entropy` instead computes, chunk by chunk, the logits, the
summed negative log-likelihood and, when gradients are needed, the gradients for the hidden
states and the head weight right away (softmax minus one-hot, two matmuls, the softmax's row
normalisation applied to the small matmul results rather than the vocabulary-wide). Backward only
scales those by the incoming gradient. Same matmul count as the usual path, a fraction of the
memory traffic, and peak memory bounded by one chunk.
"""

from __future__ import annotations

import threading
import weakref

import torch

IGNORE = -100


def _chunk_nll(h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One chunk: per-row NLL (0 on ignored rows), ``exp(logits - max)``, row scales, safe targets.

    The softmax is ``exp / row sum``; its normalisation (and the ignore mask) is returned as a
    per-row ``scale`` so callers apply it to ``[rows, H]`` matmul results instead of making
    another pass over ``[rows, V]``.
    """
    logits = torch.mm(h, weight.t()).float()
    valid = target != IGNORE
    safe = torch.where(valid, target, 0)
    picked = logits.gather(1, safe[:, None]).squeeze(1)
    top = logits.amax(dim=-1, keepdim=True)
    expd = logits.sub_(top).exp_()  # in place: one exp pass, no temporaries
    total = expd.sum(dim=-1)
    nll = torch.where(valid, total.log() + top.squeeze(1) - picked, 0.0)
    return nll, expd, valid / total, safe


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                chunk: int) -> torch.Tensor:
        grad_h = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        w = weight.to(hidden.dtype)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk]
            nll, expd, scale, safe = _chunk_nll(h, w, target[start : start + chunk])
            total += nll.sum()
            # d nll / d logits = softmax - onehot = expd * scale - onehot (rows of ignored targets: 0)
            expd = expd.to(h.dtype)
            hit = (scale > 0).to(h.dtype)[:, None]
            if grad_h is not None:
                gh = torch.mm(expd, w).mul_(scale[:, None].to(h.dtype)).sub_(w[safe] * hit)
                grad_h[start : start + chunk] = gh
            if grad_w is not None:
                grad_w += torch.mm(expd.t(), h * scale[:, None].to(h.dtype)).float()
                grad_w.index_add_(0, safe, (h * hit).float(), alpha=-1.0)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                         chunk: int = 512) -> torch.Tensor:
    """Summed next-token NLL of ``hidden @ weight.T`` against ``target`` (``-100`` = ignore).

    Args:
        hidden: ``[N, H]`` final hidden states (any float dtype; autocast applies to the matmuls).
        weight: ``[V, H]`` output head.
        target: ``[N]`` token ids or ``-100``.
        chunk: tokens per chunk (peak extra memory ``chunk x V`` floats).

    Returns:
        Scalar fp32 sum of the NLL over non-ignored tokens; differentiable w.r.t. both inputs.

    """
    if hidden.dim() != 2 or target.shape != hidden.shape[:1]:
        raise ValueError(f"linear_cross_entropy: hidden {tuple(hidden.shape)} and target "
                         f"{tuple(target.shape)} must be [N, H] and [N]")
    if torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
        with torch.autocast(hidden.device.type, enabled=False):
            return _LinearCrossEntropy.apply(hidden.to(dtype), weight, target, chunk)
    return _LinearCrossEntropy.apply(hidden, weight, target, chunk)


_scratch = threading.local()  # per thread: the head's transposed weight and its output buffers


@torch.inference_mode(False)  # buffers written later outside inference mode too
def _head_scratch(weight: torch.Tensor, dtype: torch.dtype, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight.T contiguous, [2, chunk, V] buffer)`` kept per thread across calls on CPU.

    Fresh multi-megabyte tensors page-fault on every call there (glibc hands them out by
    ``mmap``); reusing them makes batched variant scoring faster on CPU. GPUs have
    a caching allocator: a fresh pair each call (as for weights made in inference mode, which
    keep no version counter to tell a changed weight by).
    """
    if weight.device.type != "cpu" or weight.is_inference():
        return (weight.to(dtype).t().contiguous(),
                torch.empty(2, chunk, weight.shape[0], dtype=dtype, device=weight.device))
    key = (weight.data_ptr(), weight._version, dtype, chunk)
    owner = getattr(_scratch, "owner", None)
    if owner is None or owner() is not weight or _scratch.key != key:  # another or a changed weight
        _scratch.owner, _scratch.key = weakref.ref(weight), key
        _scratch.tensors = (weight.to(dtype).t().contiguous(),
                            torch.empty(2, chunk, weight.shape[0], dtype=dtype))
    return _scratch.tensors


@torch.no_grad()
def token_log_probs(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                    chunk: int = 256) -> torch.Tensor:
    """``log p(target)`` per row of ``hidden @ weight.T`` (0 where ``target`` is -100), chunked.

    Inference only: the head runs against a contiguous copy of ``weight.T`` into a reused
    ``chunk x V`` buffer and the normalisation is one fused log-softmax into a second one (faster
    on CPU than a matmul against the transposed view followed by separate max, exp and sum
    passes; the chunk keeps the buffers in cache; see experiments/benchmarks/profile_cpu.md).
    """
    out = torch.zeros(len(target), dtype=torch.float32, device=hidden.device)
    if not len(target):
        return out
    w_t, buf = _head_scratch(weight, hidden.dtype, chunk)
    for start in range(0, len(target), chunk):
        t = target[start : start + chunk]
        logits = torch.mm(hidden[start : start + chunk], w_t, out=buf[0, : len(t)])
        if logits.dtype == torch.float32:
            logp = torch.ops.aten._log_softmax.out(logits, -1, False, out=buf[1, : len(t)])
        else:
            logp = torch.log_softmax(logits.float(), dim=-1)
        valid = t != IGNORE
        out[start : start + chunk] = logp.gather(1, torch.where(valid, t, 0)[:, None]).squeeze(1) * valid
    return out
