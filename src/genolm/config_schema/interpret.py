"""Schema of ``genolm-interpret`` (``conf/interpret.yaml``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from genolm.config_schema.base import Entry, Fraction, NonNegInt, PosInt, Section
from genolm.config_schema.renamed import MODEL_PATH


class InterpretInput(Section):
    """``input``: the sequences to explain."""

    fasta: str | None = None
    csv: str | None = None
    label: int | None = None
    n: PosInt | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InterpretInput:
        if bool(self.fasta) == bool(self.csv):
            raise ValueError("set exactly one of input.fasta and input.csv")
        if self.label is not None and not self.csv:
            raise ValueError("input.label filters a labelled CSV; it needs input.csv")
        return self


class IntegratedGradientsSettings(Section):
    """``ig``."""

    steps: Annotated[int, Field(ge=2)] = 32


class Modisco(Section):
    """``modisco``: TF-MoDISco settings."""

    enabled: bool = True
    scores: Literal["ism", "ig"] = "ism"
    sliding_window_size: Annotated[int, Field(ge=4)] = 21
    flank_size: NonNegInt = 10
    max_seqlets_per_metacluster: PosInt = 2000
    min_metacluster_size: PosInt = 100
    final_min_cluster_size: PosInt = 20
    n_leiden_runs: PosInt = 50
    trim: Annotated[float, Field(gt=0, le=1)] = 0.3


class Tomtom(Section):
    """``tomtom``: the motif database and the matches reported."""

    motifs: Annotated[str, Field(min_length=1)]
    factors: str | None = None
    top: PosInt = 3
    q_threshold: Fraction = 0.05


class Logos(Section):
    """``logos``."""

    n: NonNegInt = 4


class InterpretConfig(Entry):
    """``conf/interpret.yaml``."""

    renamed: ClassVar[dict[str, str]] = MODEL_PATH
    model_path: Annotated[str, Field(min_length=1)]
    target_class: NonNegInt = 1
    output: Literal["logit", "prob"] = "logit"
    input: InterpretInput
    methods: Annotated[list[Literal["ism", "ig"]], Field(min_length=1)]
    batch_size: PosInt = 512
    device: str = "auto"
    ig: IntegratedGradientsSettings = IntegratedGradientsSettings()
    modisco: Modisco = Modisco()
    tomtom: Tomtom
    logos: Logos = Logos()
    progress: bool = True

    @model_validator(mode="after")
    def _scores_computed(self) -> InterpretConfig:
        if self.modisco.enabled and self.modisco.scores not in self.methods:
            raise ValueError(f"modisco.scores={self.modisco.scores} needs '{self.modisco.scores}' in methods "
                             f"{self.methods}")
        return self
