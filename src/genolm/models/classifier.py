"""Sequence classifiers from genolm checkpoints or Hugging Face folders (no Lightning, no Hydra)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    MixtralForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from genolm.checkpoints import safe_load
from genolm.data.tokenizers import tokenizer_from_state
from genolm.errors import GenolmError
from genolm.io import model_source
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk, use_fast

log = logging.getLogger(__name__)
MODES = ("full", "lora", "probe")


def config_from_dict(data: dict[str, Any]) -> PretrainedConfig:
    """Rebuild a transformers config from ``config.to_dict()`` output."""
    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


def read_genolm_checkpoint(path: Path) -> dict[str, Any]:
    """Load a genolm Lightning ``.ckpt`` (weights-only, on CPU) and check its ``genolm`` section."""
    ckpt = safe_load(path)
    if "genolm" not in ckpt:
        raise GenolmError(f"{path}: not a genolm checkpoint (no 'genolm' section)")
    return ckpt


def _from_causal_ckpt(path: Path, num_labels: int) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Classifier whose backbone comes from a genolm pretraining checkpoint (new head)."""
    ckpt = read_genolm_checkpoint(path)
    if ckpt["genolm"].get("kind", "causal_lm") != "causal_lm":
        raise GenolmError(f"{path}: a {ckpt['genolm']['kind']} checkpoint, not a pretrained LM")
    config = config_from_dict(ckpt["genolm"]["hf_config"])
    config.num_labels = num_labels
    model = AutoModelForSequenceClassification.from_config(config)
    backbone = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
                if k.startswith("net.model.")}
    missing, _ = model.load_state_dict(backbone, strict=False)
    if [k for k in missing if not k.startswith("score.")]:
        raise GenolmError(f"{path}: backbone weights missing for {missing[:3]}...")
    return model, ckpt["genolm"]["tokenizer"]


def classifier_from_pretrained(path: str | Path, num_labels: int, new_head: bool = False
                               ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build a sequence classifier and its tokenizer from a pretrained model.

    Args:
        path: a genolm pretraining ``.ckpt``, a genolm ``hf/`` export, or any Hugging Face
            folder (causal LM or classifier). The backbone is kept; the head is new unless the
            folder already holds a classifier with ``num_labels`` classes.
        num_labels: number of classes.
        new_head: re-initialise the classification head even when the folder's head fits.

    """
    path = Path(path)
    if model_source(path) == "ckpt":
        model, tok_state = _from_causal_ckpt(path, num_labels)
        tok = tokenizer_from_state(tok_state)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=num_labels, ignore_mismatched_sizes=True, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token_id is None:
        raise GenolmError(f"{path}: the tokenizer has no pad token")
    if new_head:
        torch.nn.init.normal_(model.score.weight, std=model.config.initializer_range)
    model.config.pad_token_id = tok.pad_token_id
    if hasattr(model.config, "output_router_logits"):
        model.config.output_router_logits = False
    use_fast(model, "auto")
    return model, tok


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
