"""Typed checks of every entrypoint's config, run before any work.

Hydra composes YAML and command-line values without types, so ``model.optimizer.lr=1e-3x`` or
``data.batch_size=0`` used to fail deep inside torch or Lightning with a traceback. Each
entrypoint names a pydantic model below; :func:`validate` resolves the config, reports a
missing required value (``???``) and checks every typed key, and raises one
:class:`~genolm.errors.GenolmError` that names each bad key and the value given.

The models list only the keys whose type or range genolm relies on; every other key passes
through untouched (``extra="allow"``), so experiments may add keys for their own objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genolm.errors import GenolmError

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Steps = Annotated[int, Field(ge=-1)]  # Lightning's -1: no limit


class Section(BaseModel):
    """A config node: typed keys checked, any other key allowed."""

    model_config = ConfigDict(extra="allow", strict=False)


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
    fast: bool = True


class Lora(Section):
    """``model.lora``: LoRA adapter settings."""

    r: PosInt = 16
    alpha: PosFloat = 16
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class Classifier(Section):
    """``model`` of finetuning: a sequence classifier built from ``init_from``."""

    init_from: Annotated[str, Field(min_length=1)]
    mode: Literal["full", "lora", "probe"] = "full"
    new_head: bool = False
    lora: Lora = Lora()
    optimizer: Optimizer
    scheduler: Scheduler = Scheduler()


class GenomeData(Section):
    """``data`` of pretraining: genome chunks."""

    inputs: Annotated[list[str], Field(min_length=1)]
    chunk_len: PosInt = 200
    max_n_frac: Fraction = 0.0
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    block_size: PosInt = 128
    batch_size: PosInt = 64
    eval_batch_size: PosInt = 128
    num_workers: NonNegInt = 0
    packing: bool = True
    rc_aug: bool = False


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


class MarkovBaseline(Section):
    """``baseline``: the end-of-run Markov comparison."""

    enabled: bool = True
    max_order: Annotated[int, Field(ge=0, le=16)] = 10
    alpha: PosFloat = 1.0


class Entry(Section):
    """Keys every entrypoint has."""

    seed: int = 42
    task_name: Annotated[str, Field(min_length=1)]


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

    data: LabeledData
    model: Classifier
    trainer: Trainer
    global_batch_size: PosInt | None = None


class EvalConfig(Entry):
    """``conf/eval.yaml``."""

    data: LabeledData
    trainer: Trainer
    ckpt_path: Annotated[str, Field(min_length=1)]
    split: Literal["train", "val", "test"] = "test"


class GenerateReport(Section):
    """``report`` of generation."""

    enabled: bool = False
    markov_order: NonNegInt = 3
    min_match: PosInt = 30


class GenerateConfig(Entry):
    """``conf/generate.yaml``."""

    ckpt_path: Annotated[str, Field(min_length=1)]
    n: PosInt
    length: PosInt
    prompt: str = ""
    temperature: PosFloat = 1.0
    top_k: NonNegInt = 0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    repetition_penalty: PosFloat = 1.0
    greedy: bool = False
    batch_size: PosInt = 64
    device: str = "auto"
    start: Literal["auto", "sep", "bos"] = "auto"
    report: GenerateReport = GenerateReport()


class ScoreReport(Section):
    """``report`` of scoring."""

    enabled: bool = True
    n_boot: NonNegInt = 1000


class ScoreConfig(Entry):
    """``conf/score.yaml``."""

    ckpt_path: Annotated[str, Field(min_length=1)]
    window: PosInt = 201
    limit: PosInt | None = None
    scores: Annotated[list[Literal["l2", "cosine", "llr"]], Field(min_length=1)]
    pooling: Literal["mean", "last", "max", "logits_max"] = "mean"
    batch_size: PosInt = 128
    device: str = "auto"
    workers: PosInt | None = None
    report: ScoreReport = ScoreReport()


class EvalLMBaseline(Section):
    """``baseline`` of ``genolm-eval-lm``."""

    fasta: str | None = None
    max_order: Annotated[int, Field(ge=0, le=16)] = 10
    alpha: PosFloat = 1.0


class EvalLMConfig(Entry):
    """``conf/eval_lm.yaml``."""

    ckpt_path: Annotated[str, Field(min_length=1)]
    # one path or a list of them (conf/eval_lm.yaml's examples use fasta=[...]); run() refuses []
    fasta: Annotated[str, Field(min_length=1)] | list[str]
    window: Annotated[int, Field(ge=2)] = 200
    max_windows: PosInt | None = None
    start: Literal["auto", "sep", "bos"] = "auto"
    batch_size: PosInt = 64
    baseline: EvalLMBaseline = EvalLMBaseline()


class Oracle(Section):
    """``oracle``: the classifier to maximise."""

    ckpt_path: Annotated[str, Field(min_length=1)]
    target_class: NonNegInt = 1
    output: Literal["prob", "logit"] = "prob"
    maximize: bool = True


class Start(Section):
    """``start``: where designs start."""

    n: PosInt | None = None
    random_length: PosInt | None = None
    label: int | None = None


class DesignConstraints(Section):
    """``constraints`` of design."""

    max_edits: PosInt = 10
    gc_range: tuple[Fraction, Fraction] = (0.0, 1.0)
    max_homopolymer: PosInt | None = None
    fixed: list[NonNegInt] = []

    @model_validator(mode="after")
    def _gc(self) -> DesignConstraints:
        if self.gc_range[0] > self.gc_range[1]:
            raise ValueError(f"gc_range {list(self.gc_range)} is empty (low > high)")
        return self


class Algorithm(Section):
    """``algorithm``: any of greedy, genetic, annealing."""

    rounds: PosInt = 10
    proposals: PosInt = 32
    population: Annotated[int, Field(ge=2)] = 64
    mutation_rate: Annotated[float, Field(gt=0, le=1)] = 0.02
    crossover: Fraction = 0.5
    elite: NonNegInt = 4
    tournament: PosInt = 4
    t_start: PosFloat = 0.1
    t_end: PosFloat = 0.001

    @model_validator(mode="after")
    def _elite(self) -> Algorithm:
        if self.elite >= self.population:
            raise ValueError(f"elite {self.elite} must be smaller than population {self.population}")
        return self


class Naturalness(Section):
    """``naturalness``: optional LM term."""

    weight: Annotated[float, Field(ge=0)] = 0.0
    lm_path: str | None = None

    @model_validator(mode="after")
    def _lm(self) -> Naturalness:
        if self.weight and not self.lm_path:
            raise ValueError("weight > 0 needs naturalness.lm_path (a causal LM)")
        return self


class Motifs(Section):
    """``motifs``: JASPAR file for the motif report."""

    path: str | None = None
    rel_threshold: Annotated[float, Field(gt=0, le=1)] = 0.9


class OptimizeConfig(Entry):
    """``conf/optimize.yaml``."""

    oracle: Oracle
    start: Start = Start()
    constraints: DesignConstraints = DesignConstraints()
    algorithm: Algorithm = Algorithm()
    naturalness: Naturalness = Naturalness()
    motifs: Motifs = Motifs()
    batch_size: PosInt = 512
    device: str = "auto"


def _plain(node: Any) -> Any:
    """The config as plain data without Hydra's ``_target_``-style keys (pydantic skips ``_`` names)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not str(k).startswith("_")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    given = f"={error['input']!r}" if "input" in error and not isinstance(error["input"], dict) else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}{given}: {message}" if key else message


def validate(cfg: DictConfig, schema: type[Section]) -> None:
    """Check ``cfg`` against ``schema``; raise one :class:`GenolmError` naming every bad key.

    Raises:
        GenolmError: a required value (``???``) is missing, an interpolation cannot be resolved,
            or a value has the wrong type or range.

    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        keys = ", ".join(missing)
        raise GenolmError(f"config: required value missing: {keys} (set it on the command line, "
                          f"e.g. {missing[0]}=...)")
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise GenolmError(f"config: {str(err).splitlines()[0]}") from None
    try:
        schema.model_validate(_plain(plain))
    except ValidationError as err:
        problems = "; ".join(_describe(e) for e in err.errors(include_url=False))
        raise GenolmError(f"config: {problems}") from None
