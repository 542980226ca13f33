"""Schemas of the training entrypoints: ``genolm-pretrain``, ``genolm-finetune``, ``genolm-eval``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from genolm.config_schema.base import Entry, Fraction, NonNegInt, PosFloat, PosInt, Section, Steps, Strand
from genolm.config_schema.renamed import FINETUNE, MODEL_PATH


class Trainer(Section):
    """``trainer``: the Lightning Trainer arguments genolm relies on."""

    max_epochs: Steps | None = None
    max_steps: Steps = -1
    num_nodes: PosInt = 1
    accumulate_grad_batches: PosInt = 1
    gradient_clip_val: Annotated[float, Field(ge=0)] | None = None
    val_check_interval: PosFloat | None = None
    check_val_every_n_epoch: PosInt | None = None
    limit_val_batches: Annotated[float, Field(ge=0)] = 1.0
    num_sanity_val_steps: Steps = 2
    log_every_n_steps: PosInt = 50
    deterministic: bool | Literal["warn"] = False
    enable_progress_bar: bool = True


class Optimizer(Section):
    """``model.optimizer``: AdamW settings."""

    lr: PosFloat
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)


class Scheduler(Section):
    """``model.scheduler``: warmup and decay."""

    warmup_steps: NonNegInt = 0
    warmup_ratio: Fraction = 0.0
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: Fraction = 0.0


class Arch(Section):
    """``model.arch``: the Mixtral/Mistral shape (head and expert counts must divide/fit)."""

    hidden_size: PosInt
    intermediate_size: PosInt
    num_hidden_layers: PosInt
    num_attention_heads: PosInt
    num_key_value_heads: PosInt
    num_local_experts: PosInt = 1
    num_experts_per_tok: PosInt = 1
    max_position_embeddings: PosInt = 256
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @model_validator(mode="after")
    def _shapes(self) -> Arch:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads {self.num_key_value_heads}")
        if self.num_experts_per_tok > self.num_local_experts:
            raise ValueError(f"num_experts_per_tok {self.num_experts_per_tok} > num_local_experts "
                             f"{self.num_local_experts}")
        return self


class CausalLM(Section):
    """``model`` of pretraining: a causal LM."""

    arch: Arch
    optimizer: Optimizer
    scheduler: Scheduler = Scheduler()


class Lora(Section):
    """``model.lora``: LoRA adapter settings."""

    r: PosInt = 16
    alpha: PosFloat = 16
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class Classifier(Section):
    """``model`` of finetuning: a sequence classifier built from the top-level ``model_path``."""

    mode: Literal["full", "lora", "probe"] = "full"
    new_head: bool = False
    lora: Lora = Lora()
    optimizer: Optimizer
    scheduler: Scheduler = Scheduler()


class WeightedInput(Section):
    """An entry ``{path: ..., weight: w}`` of ``data.inputs``: its chunks kept with probability w."""

    path: Annotated[str, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0, le=1)] = 1.0


class GenomeData(Section):
    """``data`` of pretraining: genome chunks."""

    inputs: Annotated[list[str | WeightedInput], Field(min_length=1)]
    chunk_len: PosInt = 200
    max_n_frac: Fraction = 0.0
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    block_size: PosInt = 128
    batch_size: PosInt = 64
    eval_batch_size: PosInt = 128
    num_workers: NonNegInt = 0
    packing: bool = True
    rc_aug: bool = False
    prepare_workers: PosInt | None = None
    shard_mb: Annotated[float, Field(gt=0)] = 1024


class LabeledData(Section):
    """``data`` of finetuning/eval: a labelled set."""

    name: str
    num_labels: Annotated[int, Field(ge=2)] = 2
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    limit_train: PosInt | None = None
    batch_size: PosInt = 128
    eval_batch_size: PosInt = 256
    num_workers: NonNegInt = 0
    on_too_long: Literal["error", "truncate"] = "error"
    rc_aug: bool = False


class MarkovBaseline(Section):
    """``baseline``: the end-of-run Markov comparison."""

    enabled: bool = True
    max_order: Annotated[int, Field(ge=0, le=16)] = 10
    alpha: PosFloat = 1.0


class PretrainConfig(Entry):
    """``conf/pretrain.yaml``."""

    data: GenomeData
    model: CausalLM
    trainer: Trainer
    global_batch_size: PosInt | None = None
    baseline: MarkovBaseline = MarkovBaseline()
    ckpt_path: str | None = None
    export_hf: bool = True


class FinetuneConfig(Entry):
    """``conf/finetune.yaml``."""

    renamed: ClassVar[dict[str, str]] = FINETUNE
    model_path: Annotated[str, Field(min_length=1)]
    data: LabeledData
    model: Classifier
    trainer: Trainer
    global_batch_size: PosInt | None = None
    strand: Strand = "average"


class EvalConfig(Entry):
    """``conf/eval.yaml``."""

    renamed: ClassVar[dict[str, str]] = MODEL_PATH
    data: LabeledData
    trainer: Trainer
    model_path: Annotated[str, Field(min_length=1)]
    split: Literal["train", "val", "test"] = "test"
    strand: Strand = "average"


