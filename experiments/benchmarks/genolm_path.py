"""Benchmark worker (b): the ``genolm-pretrain`` path, timed by a Lightning callback.

``train(cfg)`` runs exactly as the CLI does (Hydra-composed ``conf/pretrain.yaml``): packed
memory-mapped token blocks, the fast Mixtral forward with the fused LM-head loss, fused AdamW.
Usage: python experiments/benchmarks/genolm_path.py MODEL GLOBAL_CHUNKS STEPS WARMUP DEVICE PRECISION
"""

from __future__ import annotations

import sys
import tempfile

import lightning as L
from common import Clock, emit, flops_per_token, prepared_data, pretrain_cfg
from omegaconf import OmegaConf

from genolm.pipelines.pretrain import train

BLOCK = 64


class StepClock(L.Callback):
    """Feeds :class:`common.Clock` with every training batch's non-pad tokens."""

    def __init__(self, warmup: int, device: str) -> None:
        self.clock = Clock(warmup, device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: D102
        mask = batch.get("attention_mask")
        self.clock.step_done(int(mask.sum()) if mask is not None else batch["input_ids"].numel())


def packed_batch(overrides: list[str], chunks: int) -> tuple[int, float]:
    """Blocks per batch holding as many tokens as ``chunks`` chunks, and tokens per chunk."""
    summary = prepared_data(pretrain_cfg(overrides)).summary()
    per_chunk = summary["train_tokens"] / summary["train_chunks"]
    return max(1, round(chunks * per_chunk / BLOCK)), per_chunk


def main() -> None:
    """Run and print the RESULT line."""
    model, chunks, steps, warmup, device, precision = sys.argv[1:7]
    chunks, steps, warmup = int(chunks), int(steps), int(warmup)
    out = tempfile.mkdtemp(prefix="genolm-bench-")
    base = [f"model={model}", "tokenizer=pretrained", f"paths.output_dir={out}", f"data.block_size={BLOCK}"]
    blocks, per_chunk = packed_batch(base, chunks)
    overrides = base + [
        f"data.batch_size={blocks}", f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        f"trainer.precision={precision}", f"trainer.max_steps={warmup + steps + 1}", "trainer.max_epochs=-1",
        "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1000", "logger=none", "callbacks=none", "export_hf=false"]
    if device == "cuda":
        overrides += ["data.num_workers=4"]
    cfg = pretrain_cfg(overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.callbacks = {"clock": {"_target_": "__main__.StepClock", "warmup": warmup, "device": device}}
    _, objects = train(cfg)
    clock = next(c for c in objects["trainer"].callbacks if isinstance(c, StepClock)).clock
    arch = OmegaConf.to_container(cfg.model.arch)
    result = {"path": "genolm", "model": model, "device": device, "precision": precision,
              "batch": f"{blocks} x {BLOCK} packed tokens (~{blocks * BLOCK / per_chunk:.0f} chunks)",
              "flops_per_token": flops_per_token(arch, len(objects["tokenizer"]), BLOCK / 2),
              **clock.summary()}
    emit(result)


if __name__ == "__main__":
    main()
