"""Sequence-classifier helpers: training modes, configs, logits (no Lightning, no Hydra).

Loading a classifier from a checkpoint or folder lives in :mod:`genolm.checkpoints`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    MixtralForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)

from genolm.errors import GenolmError
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk

log = logging.getLogger(__name__)
MODES = ("full", "lora", "probe")


def config_from_dict(data: dict[str, Any]) -> PretrainedConfig:
    """Rebuild a transformers config from ``config.to_dict()`` output."""
    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


def apply_mode(model: PreTrainedModel, mode: str, lora: dict[str, Any] | None = None) -> nn.Module:
    """Set what trains: ``full`` (everything), ``probe`` (head only) or ``lora`` (adapters + head).

    Args:
        model: a ``*ForSequenceClassification`` model whose head is ``score``.
        mode: one of ``full``, ``lora``, ``probe``.
        lora: ``r``, ``alpha``, ``dropout``, ``target_modules`` for peft's ``LoraConfig``.

    """
    if mode not in MODES:
        raise GenolmError(f"model.mode must be one of {MODES}, got {mode!r}")
    if mode == "full":
        return model
    if mode == "probe":
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("score.")
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = dict(lora or {})
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.get("r", 16),
                        lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
                        target_modules=list(lora.get("target_modules", ["q_proj", "k_proj", "v_proj",
                                                                        "o_proj"])),
                        modules_to_save=["score"])
    return get_peft_model(model, config)


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


@torch.no_grad()
def classifier_logits(net: nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Class logits ``[B, labels]`` of a sequence classifier on a right-padded batch.

    With genolm's kernels switched on and a plain ``MixtralForSequenceClassification`` (not
    LoRA-wrapped; :func:`genolm.models.fast.switch.lean_trunk`) the trunk runs through
    :func:`genolm.models.fast.mixtral.mixtral_trunk` and the head scores the last real token, as
    transformers does (same numbers; trailing pads need no mask).
    """
    if isinstance(net, MixtralForSequenceClassification) and lean_trunk(net):
        hidden, _, _ = mixtral_trunk(net, input_ids)
        return net.score(hidden[torch.arange(len(hidden), device=hidden.device), mask.sum(1) - 1])
    return net(input_ids=input_ids, attention_mask=mask).logits
