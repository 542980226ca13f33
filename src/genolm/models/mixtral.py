"""Build transformers Mixtral causal LMs from plain architecture dictionaries."""

from __future__ import annotations

from typing import Any

from transformers import MixtralConfig, MixtralForCausalLM

from genolm.errors import GenolmError


def mixtral_config(arch: dict[str, Any], vocab_size: int, pad_token_id: int, bos_token_id: int,
                   eos_token_id: int) -> MixtralConfig:
    """Return a ``MixtralConfig`` for a DNA LM.

    Args:
        arch: architecture keys of ``MixtralConfig`` (hidden_size, num_hidden_layers, ...);
            ``rope_theta`` is accepted and mapped to transformers 5's ``rope_parameters``.
        vocab_size: tokenizer size.
        pad_token_id: padding id (``[PAD]``).
        bos_token_id: id that starts a sequence (``[CLS]``).
        eos_token_id: id that ends a sequence (``[SEP]``).

    """
    arch = dict(arch)
    heads = arch.get("num_attention_heads", 1)
    if arch.get("hidden_size", 0) % heads:
        raise GenolmError(f"model: hidden_size={arch['hidden_size']} is not divisible by "
                          f"num_attention_heads={heads}")
    if arch.get("num_experts_per_tok", 1) > arch.get("num_local_experts", 1):
        raise GenolmError("model: num_experts_per_tok exceeds num_local_experts")
    theta = arch.pop("rope_theta", None)
    if theta is not None:
        arch["rope_parameters"] = {"rope_type": "default", "rope_theta": float(theta)}
    try:
        return MixtralConfig(vocab_size=vocab_size, pad_token_id=pad_token_id,
                             bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                             tie_word_embeddings=False, **arch)
    except (TypeError, ValueError) as err:
        raise GenolmError(f"model: invalid Mixtral architecture {arch}: {err}") from err


def build_causal_lm(config: MixtralConfig) -> MixtralForCausalLM:
    """Instantiate a randomly initialised ``MixtralForCausalLM``."""
    return MixtralForCausalLM(config)


def count_parameters(model) -> int:
    """Number of parameters of a torch module."""
    return sum(p.numel() for p in model.parameters())
