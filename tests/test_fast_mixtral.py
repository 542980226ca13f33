"""The fast training forward and fused loss reproduce transformers' Mixtral exactly enough."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import MISTRAL_TF0
from transformers import MixtralConfig, MixtralForCausalLM

from genolm.models.fast import attention as A
from genolm.models.fast.attention import attend_in_blocks as blocks
from genolm.models.fast.fused_loss import linear_cross_entropy, token_log_probs
from genolm.models.fast.mixtral import mixtral_hidden_states, mixtral_trunk
from genolm.modules.causal_lm import CausalLMModule

SHAPES = {  # hidden, heads, kv heads, experts, top-k
    "mha_top1_narrow_heads": (64, 8, 8, 8, 1),
    "gqa_top2": (64, 4, 2, 4, 2),
    "wide_heads_sdpa": (128, 4, 4, 4, 1),
}


def _model(hidden: int, heads: int, kv: int, experts: int, top_k: int, vocab: int = 97,
           act: str = "silu") -> MixtralForCausalLM:
    torch.manual_seed(0)
    cfg = MixtralConfig(hidden_act=act, hidden_size=hidden, intermediate_size=48, num_hidden_layers=2,
                        num_attention_heads=heads, num_key_value_heads=kv, num_local_experts=experts,
                        num_experts_per_tok=top_k, vocab_size=vocab, max_position_embeddings=64,
                        output_router_logits=True, tie_word_embeddings=False)
    return MixtralForCausalLM(cfg).eval()


def _batch(vocab: int = 97) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, vocab, (3, 21), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 15:], mask[2, 6:] = 0, 0
    return ids, mask


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padded", [False, True])
def test_logits_and_aux_loss_match_transformers(shape: str, padded: bool) -> None:
    net = _model(*SHAPES[shape])
    ids, mask = _batch()
    mask = mask if padded else None
    ref = net(input_ids=ids, attention_mask=mask, output_router_logits=True)
    hidden, aux = mixtral_hidden_states(net, ids, mask)
    real = mask.bool() if padded else torch.ones_like(ids, dtype=torch.bool)
    assert torch.allclose(net.lm_head(hidden)[real], ref.logits[real], atol=1e-4)
    assert torch.allclose(aux, ref.aux_loss, atol=1e-5)


@pytest.mark.parametrize("padded", [False, True])
def test_inference_on_cpu_attends_in_blocks_and_matches_transformers(padded: bool, monkeypatch) -> None:
    """Under no_grad on CPU short windows take the blocked materialised attention."""
    net = _model(*SHAPES["mha_top1_narrow_heads"])
    ids, mask = _batch()
    mask = mask if padded else None
    calls = []
    monkeypatch.setattr(A, "BLOCK_BYTES", 2 * 8 * 21 * 21 * 4)  # two batch rows per block: 2 + 1
    monkeypatch.setattr(A, "attend_in_blocks", lambda *a: calls.append(1) or blocks(*a))
    with torch.no_grad():
        ref = net(input_ids=ids, attention_mask=mask).logits
        hidden, _ = mixtral_hidden_states(net, ids, mask)
    real = mask.bool() if padded else torch.ones_like(ids, dtype=torch.bool)
    assert len(calls) == 2 and torch.allclose(net.lm_head(hidden)[real], ref[real], atol=1e-4)


@pytest.mark.parametrize("mask_kind", ["causal", "prefix", "padded"])
def test_blocked_attention_equals_sdpa(mask_kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    t, s = (5, 9) if mask_kind == "prefix" else (9, 9)
    q, k, v = (torch.randn(5, 3, n, 4, generator=g) for n in (t, s, s))
    mask = None
    if mask_kind == "prefix":
        mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
    elif mask_kind == "padded":
        mask = torch.ones(5, 1, t, s, dtype=torch.bool).tril()
        mask[1, :, :, 6:] = False
        mask |= torch.eye(t, dtype=torch.bool)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=0.3)
    got = blocks(q, k, v, mask, 0.3)
    assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("shape", ["mha_top1_narrow_heads", "gqa_top2"])
def test_cached_prefix_continues_exactly_where_a_full_run_is(shape: str) -> None:
    """Keys/values of the first 8 positions, then the rest attending to them: the same hidden
    states as one pass over the whole sequence (trailing pads need no mask)."""
    net = _model(*SHAPES[shape])
    ids, mask = _batch()
    with torch.no_grad():
        full, _, kv = mixtral_trunk(net, ids, keep_kv=True)
        prefix = [(k[:, :, :8], v[:, :, :8]) for k, v in kv]
        rest, _, _ = mixtral_trunk(net, ids[:, 8:], prefix=prefix)
        masked, _ = mixtral_hidden_states(net, ids, mask)
    assert len(kv) == 2 and kv[0][0].shape == (3, SHAPES[shape][2], 21, 64 // SHAPES[shape][1])
    assert torch.allclose(rest, full[:, 8:], atol=1e-5)
    assert torch.allclose(full[mask.bool()], masked[mask.bool()], atol=1e-5)
    with pytest.raises(ValueError, match="no attention_mask"):
        mixtral_trunk(net, ids[:, 8:], mask[:, 8:], prefix=prefix)


def test_non_silu_experts_use_the_autograd_loop_and_match() -> None:
    net = _model(*SHAPES["gqa_top2"], act="gelu")
    ids, mask = _batch()
    ref = net(input_ids=ids, attention_mask=mask, output_router_logits=True)
    hidden, aux = mixtral_hidden_states(net, ids, mask)
    assert torch.allclose(net.lm_head(hidden)[mask.bool()], ref.logits[mask.bool()], atol=1e-4)
    assert torch.allclose(aux, ref.aux_loss, atol=1e-5)


@pytest.mark.parametrize(("chunk", "shape"),
                         [(5, "gqa_top2"), (1024, "gqa_top2"), (64, "mha_top1_narrow_heads")])
def test_fused_loss_equals_cross_entropy_with_gradients(chunk: int, shape: str) -> None:
    net = _model(*SHAPES[shape])
    ids, mask = _batch()
    labels = ids.masked_fill(mask == 0, -100)
    out = net(input_ids=ids, attention_mask=mask)
    ref = F.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
    ref.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()
    hidden, _ = mixtral_hidden_states(net, ids, mask)
    fused = linear_cross_entropy(hidden.flatten(0, 1), net.lm_head.weight, labels.flatten(), chunk=chunk)
    (fused * 1.0).backward()
    assert fused.item() == pytest.approx(ref.item(), rel=1e-5)
    for name, p in net.named_parameters():
        if name in grads:  # top-1 routers: zero in transformers (weight p / p), absent here
            got = p.grad if p.grad is not None else torch.zeros_like(p)
            assert torch.allclose(got, grads[name], atol=1e-5), name


def test_fused_loss_without_grad_and_all_ignored() -> None:
    hidden, weight = torch.randn(6, 8), torch.randn(11, 8)
    target = torch.full((6,), -100)
    assert linear_cross_entropy(hidden, weight, target).item() == 0.0
    target[:3] = torch.tensor([1, 2, 3])
    with torch.no_grad():
        got = linear_cross_entropy(hidden, weight, target)
    want = F.cross_entropy(hidden @ weight.T, target, ignore_index=-100, reduction="sum")
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match="must be"):
        linear_cross_entropy(hidden[None], weight, target)


def test_bf16_autocast_stays_close_to_fp32() -> None:
    net = _model(*SHAPES["mha_top1_narrow_heads"])
    ids, _ = _batch()
    hidden, _ = mixtral_hidden_states(net, ids)
    ref = linear_cross_entropy(hidden.flatten(0, 1), net.lm_head.weight, ids.flatten())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden16, _ = mixtral_hidden_states(net, ids)
        got = linear_cross_entropy(hidden16.flatten(0, 1), net.lm_head.weight, ids.flatten())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=2e-2)


def test_mistral_dna_checkpoint_runs_on_the_fast_path() -> None:
    net = MixtralForCausalLM.from_pretrained(MISTRAL_TF0).eval()
    ids = torch.randint(5, net.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(0))
    hidden, _ = mixtral_hidden_states(net, ids)
    ref = net(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(hidden, ref, atol=1e-4)


def test_module_fast_and_transformers_paths_give_the_same_step() -> None:
    arch = {"hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 4, "num_local_experts": 4, "num_experts_per_tok": 1,
            "max_position_embeddings": 64, "output_router_logits": True, "router_aux_loss_coef": 0.02}
    ids = torch.randint(5, 50, (4, 17), generator=torch.Generator().manual_seed(2))
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    losses = []
    for fast in (True, False):
        torch.manual_seed(0)
        module = CausalLMModule(arch, vocab_size=50, pad_token_id=3, bos_token_id=1, eos_token_id=2,
                                fast=fast)
        nll, n_tok, aux = module._losses(batch)
        losses.append((nll.item(), int(n_tok), aux.item()))
    assert losses[0][1] == losses[1][1]
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    assert losses[0][2] == pytest.approx(losses[1][2], rel=1e-5)


def test_bf16_mixed_training_with_clipping_and_both_paths(tiny_cfg) -> None:
    """bf16 autocast + gradient clipping trains (fused AdamW would be refused by Lightning)."""
    from genolm.pipelines.pretrain import train

    losses = {}
    for fast in ("true", "false"):
        metrics, objects = train(tiny_cfg("trainer.precision=bf16-mixed", "trainer.gradient_clip_val=1.0",
                                          "trainer.max_steps=4", f"fast={fast}", "callbacks=none",
                                          "export_hf=false"))
        assert objects["trainer"].global_step == 4
        losses[fast] = metrics["val/loss"]
    assert losses["true"] == pytest.approx(losses["false"], rel=0.02)


def test_token_log_probs_reuses_buffers_only_for_the_same_unchanged_weight() -> None:
    g = torch.Generator().manual_seed(0)
    h, t = torch.randn(300, 8, generator=g), torch.randint(0, 50, (300,), generator=g)

    def want(w: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(h @ w.T, -1).gather(1, t[:, None]).squeeze(1)

    w = torch.randn(50, 8, generator=g)
    assert torch.allclose(token_log_probs(h, w, t), want(w), atol=1e-5)
    w.mul_(2)  # changed in place: the cached transposed weight must not be reused
    assert torch.allclose(token_log_probs(h, w, t), want(w), atol=1e-5)
    other = torch.randn(50, 8, generator=g)
    assert torch.allclose(token_log_probs(h, other, t), want(other), atol=1e-5)
    with torch.inference_mode():  # a weight without a version counter
        frozen = torch.randn(50, 8, generator=g)
    assert torch.allclose(token_log_probs(h, frozen, t), want(frozen), atol=1e-5)

