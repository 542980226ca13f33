"""Schemas of the inference entrypoints: generate, score, eval-lm, optimize."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from genolm.config_schema.base import Entry, Fraction, NonNegInt, PosFloat, PosInt, Section, Strand
from genolm.config_schema.interpret import Modisco
from genolm.config_schema.renamed import MODEL_PATH, OPTIMIZE


class GenerateReport(Section):
    """``report`` of generation."""

    enabled: bool = False
    markov_order: NonNegInt = 3
    min_match: PosInt = 30


class GenerateConfig(Entry):
    """``conf/generate.yaml``."""

    renamed: ClassVar[dict[str, str]] = MODEL_PATH
    model_path: Annotated[str, Field(min_length=1)]
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

    renamed: ClassVar[dict[str, str]] = MODEL_PATH
    model_path: Annotated[str, Field(min_length=1)]
    window: PosInt = 201
    limit: PosInt | None = None
    scores: Annotated[list[Literal["l2", "cosine", "llr"]], Field(min_length=1)]
    pooling: Literal["mean", "last", "max", "logits_max"] = "mean"
    strand: Strand = "forward"
    batch_size: PosInt = 128
    device: str = "auto"
    workers: PosInt | None = None
    report: ScoreReport = ScoreReport()


Paths = Annotated[str, Field(min_length=1)] | Annotated[list[str], Field(min_length=1)]


class EvalLMBaseline(Section):
    """``baseline`` of ``genolm-eval-lm``."""

    fasta: Paths | None = None
    max_order: Annotated[int, Field(ge=0, le=16)] = 10
    alpha: PosFloat = 1.0


class EvalLMConfig(Entry):
    """``conf/eval_lm.yaml``."""

    renamed: ClassVar[dict[str, str]] = MODEL_PATH
    model_path: Annotated[str, Field(min_length=1)]
    fasta: Paths
    window: Annotated[int, Field(ge=2)] = 200
    max_windows: PosInt | None = None
    start: Literal["auto", "sep", "bos"] = "auto"
    batch_size: PosInt = 64
    baseline: EvalLMBaseline = EvalLMBaseline()


class Oracle(Section):
    """``oracle``: what to maximise of the classifier at the top-level ``model_path``."""

    target_class: NonNegInt = 1
    output: Literal["prob", "logit"] = "prob"
    maximize: bool = True
    strand: Strand = "forward"


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
    model_path: str | None = None

    @model_validator(mode="after")
    def _lm(self) -> Naturalness:
        if self.weight and not self.model_path:
            raise ValueError("weight > 0 needs naturalness.model_path (a causal LM)")
        return self


class Motifs(Section):
    """``motifs``: JASPAR file for the motif report."""

    path: str | None = None
    rel_threshold: Annotated[float, Field(gt=0, le=1)] = 0.9


class Audit(Section):
    """``audit``: ISM of starts and designs, edits vs ISM and gained JASPAR sites, optional motifs."""

    enabled: bool = False
    output: Literal["logit", "prob"] = "logit"
    logos: NonNegInt = 3
    modisco: bool = False
    modisco_settings: Modisco = Modisco(min_metacluster_size=20, final_min_cluster_size=10, n_leiden_runs=10)
    factors: str | None = None
    top: PosInt = 3


class OptimizeConfig(Entry):
    """``conf/optimize.yaml``."""

    renamed: ClassVar[dict[str, str]] = OPTIMIZE
    model_path: Annotated[str, Field(min_length=1)]
    oracle: Oracle
    start: Start = Start()
    constraints: DesignConstraints = DesignConstraints()
    algorithm: Algorithm = Algorithm()
    naturalness: Naturalness = Naturalness()
    motifs: Motifs = Motifs()
    audit: Audit = Audit()
    batch_size: PosInt = 512
    device: str = "auto"


