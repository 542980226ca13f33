"""AdamW with decoupled weight decay groups and a warmup + decay learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def adamw(model: nn.Module, lr: float = 5e-4, weight_decay: float = 0.01,
          betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8, fused: bool = True
          ) -> torch.optim.AdamW:
    """AdamW that decays matrices only (no decay on norms, biases or 1-d parameters).

    ``fused`` uses one fused kernel per step on CPU and CUDA (else the multi-tensor path).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    fused = fused and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused or None,
                             foreach=None if fused else True)


def lr_lambda(step: int, total: int, warmup: int, decay: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at ``step``: linear warmup then decay."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if decay == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                 warmup_ratio: float = 0.0, decay: str = "cosine", min_lr_ratio: float = 0.1
                 ) -> dict[str, Any]:
    """Lightning scheduler dict (stepped every optimizer step).

    Args:
        optimizer: the optimizer.
        total_steps: optimizer steps in the whole run.
        warmup_steps: linear warmup steps (used when > 0, else ``warmup_ratio``).
        warmup_ratio: warmup as a share of ``total_steps``.
        decay: ``cosine``, ``linear`` or ``constant``.
        min_lr_ratio: final learning rate as a share of the peak.

    """
    if decay not in {"cosine", "linear", "constant"}:
        raise ValueError(f"scheduler.decay must be cosine, linear or constant, got {decay!r}")
    warmup = warmup_steps or int(warmup_ratio * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, total_steps, warmup, decay, min_lr_ratio))
    return {"scheduler": sched, "interval": "step", "frequency": 1}
