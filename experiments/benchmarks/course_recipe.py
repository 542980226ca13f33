"""Benchmark worker (a): the course notebook's recipe, the baseline genolm is compared with.

Hugging Face ``Trainer`` on ``MixtralForCausalLM`` (transformers' own forward), one 200-base chunk
per sequence tokenized with the DNABERT-2 BPE tokenizer, ``DataCollatorForLanguageModeling(mlm=False)``
padding every batch to its longest member on the left, ``TrainingArguments`` as in the notebook:
lr 5e-4, weight decay 0.01, fp16 on GPU, fp32 on CPU. Same chunks, tokenizer and Mixtral config
as the genolm run.
Usage: python experiments/benchmarks/course_recipe.py MODEL GLOBAL_CHUNKS STEPS WARMUP DEVICE
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import Clock, emit, flops_per_token, prepared_data, pretrain_cfg
from omegaconf import OmegaConf
from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

from genolm.models.mixtral import build_causal_lm, mixtral_config


class CountingCollator(DataCollatorForLanguageModeling):
    """The course's collator, also counting the non-pad tokens of every batch it builds."""

    def __call__(self, features, return_tensors=None):  # noqa: D102
        batch = super().__call__(features, return_tensors)
        self.counts.append(int(batch["attention_mask"].sum()))
        return batch


class StepClock(TrainerCallback):
    """Stamps the end of every optimizer step."""

    def __init__(self, clock: Clock, collator: CountingCollator) -> None:
        self.clock, self.collator = clock, collator

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        self.clock.step_done(self.collator.counts[len(self.clock.stamps)])


def main() -> None:
    """Run and print the RESULT line."""
    model_name, chunks, steps, warmup, device = sys.argv[1:6]
    chunks, steps, warmup = int(chunks), int(steps), int(warmup)
    out = tempfile.mkdtemp(prefix="course-bench-")
    cfg = pretrain_cfg([f"model={model_name}", "tokenizer=pretrained", f"paths.output_dir={out}"])
    data = prepared_data(cfg)
    tok = data.tokenizer
    lines = Path(data.corpus_dir, "train.txt").read_text().split()[: chunks * (warmup + steps + 1)]
    tok.padding_side = "left"
    dataset = [{"input_ids": ids} for ids in tok(lines)["input_ids"]]
    arch = OmegaConf.to_container(cfg.model.arch)
    config = mixtral_config(arch, len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    net = build_causal_lm(config)
    collator = CountingCollator(tok, mlm=False)
    collator.counts = []
    clock = Clock(warmup, device)
    args = TrainingArguments(
        output_dir=out, per_device_train_batch_size=chunks, learning_rate=5e-4, weight_decay=0.01,
        fp16=device == "cuda", use_cpu=device == "cpu", max_steps=warmup + steps + 1, logging_steps=10**6,
        save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True, seed=42)
    Trainer(model=net, args=args, train_dataset=dataset, data_collator=collator,
            callbacks=[StepClock(clock, collator)]).train()
    padded = sum(len(d["input_ids"]) for d in dataset[:chunks]) / chunks
    emit({"path": "course", "model": model_name, "device": device,
          "precision": "16-mixed" if device == "cuda" else "32-true",
          "batch": f"{chunks} chunks, padded to the longest (mean {padded:.1f} tokens)",
          "flops_per_token": flops_per_token(arch, len(tok), padded / 2), **clock.summary()})


if __name__ == "__main__":
    main()
