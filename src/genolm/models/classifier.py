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
    AutoModelForSequenceClassification,
    MixtralForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)

from genolm.errors import GenolmError
from genolm.hub import resolve_model_path
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk

log = logging.getLogger(__name__)
MODES = ("full", "lora", "probe")


def config_from_dict(data: dict[str, Any]) -> PretrainedConfig:
    """Rebuild a transformers config from ``config.to_dict()`` output."""
    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


def classifier_from_config(hf_config_dict: dict[str, Any], init_from: str | None = None,
                           trust_remote_code: bool = False) -> PreTrainedModel:
    """A sequence classifier with fresh weights rebuilt from its stored ``config.to_dict()``.

    A model with its own code (``auto_map``) needs ``trust_remote_code`` and that code, found
    again in ``init_from`` (the folder or Hub id it was finetuned from).
    """
    if not hf_config_dict.get("auto_map"):
        return AutoModelForSequenceClassification.from_config(config_from_dict(hf_config_dict))
    source = init_from or hf_config_dict.get("_name_or_path")
    if not trust_remote_code:
        raise GenolmError(f"this classifier runs the model code of {source} (auto_map); "
                          "set trust_remote_code=true")
    folder = resolve_model_path(source)
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=True, local_files_only=True)
        config = type(config).from_dict({**hf_config_dict, "_name_or_path": str(folder)})
        return AutoModelForSequenceClassification.from_config(config, trust_remote_code=True)
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise GenolmError(f"{folder}: cannot rebuild the classifier from its own code "
                          f"({str(err).splitlines()[0][:300] if str(err) else type(err).__name__})") from err


def head_modules(model: PreTrainedModel) -> list[str]:
    """Names of the top-level modules with parameters outside the backbone: the classification head.

    Found from the model, not from a fixed name: ``score`` for Mixtral and Llama-like
    classifiers, ``classifier`` for BERT, ESM and RoBERTa (``base_model_prefix`` names the
    backbone: ``model``, ``bert``, ``esm``, ...).

    Raises:
        GenolmError: the model has no module outside its backbone.

    """
    backbone = getattr(model, "base_model_prefix", "")
    heads = [name for name, child in model.named_children()
             if name != backbone and next(child.parameters(), None) is not None]
    if not heads:
        raise GenolmError(f"{type(model).__name__}: no classification head outside the backbone "
                          f"{backbone!r}")
    return heads


def reset_head(model: PreTrainedModel) -> None:
    """Re-initialise the classification head: normal(0, ``initializer_range``) weights, zero biases."""
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        for head in head_modules(model):
            for param in getattr(model, head).parameters():
                if param.dim() > 1:
                    torch.nn.init.normal_(param, std=std)
                else:
                    torch.nn.init.zeros_(param)


def lora_targets(model: PreTrainedModel, wanted: list[str] | None) -> list[str]:
    """LoRA target modules that exist in ``model``.

    The configured names (genolm's Mixtral attention projections by default) where the model
    has them; otherwise peft's default for the model type (``query``/``value`` for BERT and
    RoBERTa) where those exist; otherwise the attention projections the model does have
    (``query``/``key``/``value`` for ESM, ``Wqkv`` for DNABERT-2).

    Raises:
        GenolmError: none of these names is a linear layer of the model.

    """
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    linear = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
              if isinstance(module, nn.Linear)}
    model_type = getattr(model.config, "model_type", "")
    for candidates in (wanted or [], DEFAULTS.get(model_type) or [], ["query", "key", "value", "Wqkv"]):
        found = [name for name in candidates if name in linear]
        if found:
            return found
    raise GenolmError(f"model.lora.target_modules: none of {list(wanted or [])} is a linear layer of this "
                      f"{model_type or type(model).__name__} model; set it to some of {sorted(linear)[:12]}")


def apply_mode(model: PreTrainedModel, mode: str, lora: dict[str, Any] | None = None) -> nn.Module:
    """Set what trains: ``full`` (everything), ``probe`` (head only) or ``lora`` (adapters + head).

    The head is every module outside the backbone (:func:`head_modules`); LoRA adapts
    :func:`lora_targets`, so any transformers sequence classifier works.

    Args:
        model: a ``*ForSequenceClassification`` model.
        mode: one of ``full``, ``lora``, ``probe``.
        lora: ``r``, ``alpha``, ``dropout``, ``target_modules`` for peft's ``LoraConfig``.

    """
    if mode not in MODES:
        raise GenolmError(f"model.mode must be one of {MODES}, got {mode!r}")
    if mode == "full":
        return model
    heads = head_modules(model)
    if mode == "probe":
        for name, param in model.named_parameters():
            param.requires_grad = name.split(".", 1)[0] in heads
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = dict(lora or {})
    targets = lora_targets(model, list(lora.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"])))
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.get("r", 16),
                        lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
                        target_modules=targets, modules_to_save=heads)
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
