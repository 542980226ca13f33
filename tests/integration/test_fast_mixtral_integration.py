"""The fast path on real data: the shipped Mistral-DNA checkpoint, a bf16 run on chr22 (rest: tests/unit)."""

from __future__ import annotations

import pytest
import torch
from helpers import MISTRAL_TF0
from transformers import MixtralForCausalLM

from genolm.models.fast.mixtral import mixtral_hidden_states


def test_mistral_dna_checkpoint_runs_on_the_fast_path() -> None:
    net = MixtralForCausalLM.from_pretrained(MISTRAL_TF0).eval()
    ids = torch.randint(5, net.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(0))
    hidden, _ = mixtral_hidden_states(net, ids)
    ref = net(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(hidden, ref, atol=1e-4)


@pytest.mark.fit
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
