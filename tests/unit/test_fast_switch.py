"""The ``fast`` switch: one decision, transformers' extension points, equality with plain transformers."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import (
    AttentionInterface,
    MixtralConfig,
    MixtralForCausalLM,
    MixtralForSequenceClassification,
)
from transformers.integrations.moe import ExpertsInterface

from genolm.errors import GenolmError
from genolm.models.classifier import classifier_logits
from genolm.models.fast import switch
from genolm.models.fast.switch import NAME, fast_enabled, fast_mode, lean_trunk, resolve_fast, use_fast

SHAPES = {  # hidden, heads, kv heads, experts, top-k
    "mha_top1": (64, 8, 8, 8, 1),
    "gqa_top2": (64, 4, 2, 4, 2),
}


def _config(hidden: int, heads: int, kv: int, experts: int, top_k: int) -> MixtralConfig:
    return MixtralConfig(hidden_size=hidden, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv, num_local_experts=experts,
                         num_experts_per_tok=top_k, vocab_size=97, max_position_embeddings=64,
                         pad_token_id=0, tie_word_embeddings=False)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 97, (3, 21), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 15:], mask[2, 6:] = 0, 0
    return ids, mask


def _both(net: torch.nn.Module, run) -> tuple:
    """``run()`` with genolm's kernels off, then on."""
    with fast_mode(net, False):
        plain = run()
    with fast_mode(net, True):
        fast = run()
    return plain, fast


@pytest.mark.parametrize(("fast", "device", "on"), [
    ("auto", "cpu", True), ("auto", "cuda", False), ("auto", "mps", False), ("auto", "cuda:1", False),
    ("true", "cpu", True), ("false", "cpu", False), (True, "cpu", True), (False, "cpu", False),
    ("TRUE", "cuda", True), ("false", "cuda", False)])
def test_resolve_fast(fast, device: str, on: bool) -> None:
    assert resolve_fast(fast, device) is on


def test_forcing_an_unverified_device_warns_once(caplog, monkeypatch) -> None:
    monkeypatch.setattr(switch, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="genolm.models.fast.switch"):
        assert resolve_fast("true", "mps") and resolve_fast("true", "mps")
    assert [r.getMessage() for r in caplog.records if "not been verified" in r.getMessage()] == [
        next(r.getMessage() for r in caplog.records)]
    with pytest.raises(GenolmError, match="fast must be one of auto, true, false"):
        resolve_fast("sometimes", "cpu")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padded", [False, True])
def test_registered_kernels_match_plain_transformers_lm(shape: str, padded: bool) -> None:
    """The plain transformers forward with genolm's attention and experts registered: same logits
    at inference (blocked attention) and same loss and gradients in training (sdpa, SwiGLU backward)."""
    torch.manual_seed(0)
    net = MixtralForCausalLM(_config(*SHAPES[shape])).eval()
    ids, mask = _batch()
    mask = mask if padded else None
    real = mask.bool() if padded else torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        plain, fast = _both(net, lambda: net(input_ids=ids, attention_mask=mask).logits)
    assert torch.allclose(plain[real], fast[real], atol=1e-5)

    def step() -> tuple[torch.Tensor, list[torch.Tensor]]:
        net.zero_grad()
        loss = net(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters()]

    (l0, g0), (l1, g1) = _both(net, step)
    assert torch.allclose(l0, l1, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g0, g1, strict=True))


def test_registered_kernels_and_lean_trunk_match_plain_transformers_classifier() -> None:
    torch.manual_seed(0)
    net = MixtralForSequenceClassification(_config(*SHAPES["gqa_top2"])).eval()
    ids, mask = _batch()
    ids = ids.masked_fill(mask == 0, 0)  # transformers finds the last token by the pad id
    with torch.no_grad():
        plain, fast = _both(net, lambda: net(input_ids=ids, attention_mask=mask).logits)
        lean_plain, lean = _both(net, lambda: classifier_logits(net, ids, mask))
    assert torch.allclose(plain, fast, atol=1e-5)
    assert torch.allclose(plain, lean, atol=1e-5) and torch.equal(plain, lean_plain)


def test_generation_with_kernels_equals_plain_generation() -> None:
    """``generate`` with its KV cache: one query per step against the cache, same greedy tokens."""
    torch.manual_seed(0)
    net = MixtralForCausalLM(_config(*SHAPES["gqa_top2"])).eval()
    ids = _batch()[0][:, :4]
    plain, fast = _both(net, lambda: net.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                                  max_new_tokens=12, do_sample=False, pad_token_id=0))
    assert torch.equal(plain, fast)


def test_off_runs_transformers_own_kernels(monkeypatch) -> None:
    """Switched off, neither registered kernel is called and the lean trunk is not chosen."""
    calls = {"attention": 0, "experts": 0}
    attention, experts = AttentionInterface._global_mapping[NAME], ExpertsInterface._global_mapping[NAME]

    def counted(kind: str, kernel):
        def run(*args, **kwargs):
            calls[kind] += 1
            return kernel(*args, **kwargs)
        return run

    monkeypatch.setitem(AttentionInterface._global_mapping, NAME, counted("attention", attention))
    monkeypatch.setitem(ExpertsInterface._global_mapping, NAME, counted("experts", experts))
    torch.manual_seed(0)
    net = MixtralForCausalLM(_config(*SHAPES["mha_top1"])).eval()
    ids = _batch()[0]
    assert not use_fast(net, "false") and not fast_enabled(net) and not lean_trunk(net)
    assert net.config._attn_implementation != NAME and net.config._experts_implementation != NAME
    with torch.no_grad():
        net(input_ids=ids)
    assert calls == {"attention": 0, "experts": 0}
    assert use_fast(net, "auto") and lean_trunk(net)
    with torch.no_grad():
        net(input_ids=ids)
    assert calls == {"attention": 2, "experts": 2}  # one call per layer


def test_switch_state_lives_in_the_config_and_is_not_saved(tmp_path) -> None:
    net = MixtralForCausalLM(_config(*SHAPES["mha_top1"]))
    with fast_mode(net, True):
        assert fast_enabled(net)
        net.save_pretrained(tmp_path)
    assert not fast_enabled(net)
    assert NAME not in (tmp_path / "config.json").read_text()
    assert not use_fast(torch.nn.Linear(2, 2), "true") and not fast_enabled(object())


def test_left_padded_batches_stay_finite() -> None:
    """Left-padded prompts leave pad queries without any visible key: no NaN may leak."""
    torch.manual_seed(0)
    net = MixtralForCausalLM(_config(*SHAPES["mha_top1"])).eval()
    ids = _batch()[0][:2, :6]
    mask = torch.ones_like(ids)
    ids[1, :3], mask[1, :3] = 0, 0
    with torch.no_grad():
        plain, fast = _both(net, lambda: net(input_ids=ids, attention_mask=mask).logits)
    assert torch.isfinite(fast).all()
    assert torch.allclose(plain[mask.bool()], fast[mask.bool()], atol=1e-5)
