"""The one switch for genolm's fast Mixtral kernels: decide, apply, ask.

- :func:`resolve_fast` turns the config value ``fast: auto | true | false`` and a device into
  on/off: ``auto`` is on only for device types in :data:`VERIFIED_DEVICE_TYPES`.
- :func:`use_fast` applies it to a model through transformers' own extension points: genolm's
  attention kernel is registered in ``AttentionInterface`` (with sdpa's boolean masks in
  ``AttentionMaskInterface``) and its sorted expert dispatch in ``ExpertsInterface`` (transformers'
  ``MixtralExperts`` is built with ``use_experts_implementation``), both under the name
  :data:`NAME` and selected with the model's ``set_attn_implementation`` and
  ``set_experts_implementation``. The plain transformers forward, ``generate`` and its
  ``DynamicCache`` included, then runs genolm's kernels; off restores transformers' defaults.
- :func:`fast_enabled` reads the state back from the model's config (the selected attention
  implementation), so nothing is hidden on the model; transformers does not save that choice
  into ``config.json``, and exported models load anywhere.

Where no extension point fits, genolm's function stays, behind the same switch
(:func:`lean_trunk`): :func:`genolm.models.fast.mixtral.mixtral_trunk` fuses the q/k/v
projections and rotates q and k with one complex multiply (transformers projects and rotates
before it calls the attention interface), runs the last layer on one position per row for
classifiers, and runs the alternative windows of variant pairs on the reference windows' keys
and values in one batch (a ``DynamicCache`` holds one sequence per row, extended by every call,
where the pairs need a prefix cut per batch and shared read-only by a second batch); the fused
language-model-head losses never materialise the logits that transformers' head returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AttentionInterface, MixtralForCausalLM, MixtralForSequenceClassification
from transformers.integrations.moe import ExpertsInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.models.mixtral.modeling_mixtral import MixtralPreTrainedModel

from genolm.errors import GenolmError
from genolm.models.fast.attention import hf_attention
from genolm.models.fast.mixtral import hf_experts

log = logging.getLogger(__name__)

NAME = "genolm"
CHOICES = ("auto", "true", "false")
# Device types on which the fast path's equality tests (tests/test_fast_mixtral.py) and
# `make bench` have run. CUDA joins once a GPU run of both has passed; until then `auto` keeps
# GPUs on plain transformers and `fast: true` there warns.
VERIFIED_DEVICE_TYPES = frozenset({"cpu"})
LEAN_CLASSES = (MixtralForCausalLM, MixtralForSequenceClassification)
_warned: set[str] = set()

AttentionInterface.register(NAME, hf_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)
ExpertsInterface.register(NAME, hf_experts)


def _choice(fast: str | bool) -> str:
    """``fast`` as one of :data:`CHOICES` (YAML may hand over a bool)."""
    value = {True: "true", False: "false"}.get(fast, fast) if isinstance(fast, bool) else str(fast).lower()
    if value not in CHOICES:
        raise GenolmError(f"fast must be one of {', '.join(CHOICES)}, got {fast!r}")
    return value


def resolve_fast(fast: str | bool, device: torch.device | str) -> bool:
    """Whether genolm's kernels run on ``device`` for the setting ``fast`` (auto, true, false).

    ``true`` on a device type outside :data:`VERIFIED_DEVICE_TYPES` is honoured with one warning.
    """
    value, kind = _choice(fast), torch.device(device).type
    if value == "auto":
        return kind in VERIFIED_DEVICE_TYPES
    if value == "true" and kind not in VERIFIED_DEVICE_TYPES and kind not in _warned:
        _warned.add(kind)
        log.warning("fast=true on %s: genolm's fast kernels have not been verified on this device type "
                    "(fast=auto would use transformers' own)", kind)
    return value == "true"


def mixtral_of(model: nn.Module) -> MixtralPreTrainedModel | None:
    """The transformers Mixtral model inside ``model`` (itself, or under a LoRA wrapper), or None."""
    if not isinstance(model, nn.Module):
        return None
    return next((m for m in model.modules() if isinstance(m, MixtralPreTrainedModel)), None)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def use_fast(model: nn.Module, fast: str | bool = "auto", device: torch.device | str | None = None) -> bool:
    """Switch genolm's kernels on or off for ``model``; returns whether they are now on.

    Args:
        model: a transformers Mixtral model, possibly wrapped (LoRA); others are left alone (off).
        fast: ``auto``, ``true`` or ``false`` (or a bool).
        device: where the model will run (default: where its parameters are).

    """
    on = resolve_fast(fast, device if device is not None else _device(model))
    net = mixtral_of(model)
    if net is None:
        return False
    if on:
        net.set_attn_implementation(NAME)
        net.set_experts_implementation(NAME)
    else:
        net.set_attn_implementation(net.get_correct_attn_implementation(None))
        net.set_experts_implementation(net.get_correct_experts_implementation(None))
    return on


def fast_enabled(model: object) -> bool:
    """Whether genolm's kernels are switched on for ``model`` (see :func:`use_fast`)."""
    net = mixtral_of(model) if isinstance(model, nn.Module) else None
    return net is not None and net.config._attn_implementation == NAME


def lean_trunk(model: object) -> bool:
    """Whether :func:`genolm.models.fast.mixtral.mixtral_trunk` may run ``model``.

    The switch is on and ``model`` is a plain Mixtral causal LM or sequence classifier (a LoRA
    wrapper changes the forward, so it keeps transformers' own, with genolm's kernels).
    """
    return type(model) in LEAN_CLASSES and fast_enabled(model)


@contextmanager
def fast_mode(model: nn.Module, fast: str | bool) -> Iterator[bool]:
    """:func:`use_fast` for a block; the previous state comes back afterwards."""
    before = fast_enabled(model)
    try:
        yield use_fast(model, fast)
    finally:
        use_fast(model, before)
