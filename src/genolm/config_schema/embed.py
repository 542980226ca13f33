"""Schema of ``genolm-embed`` (``conf/embed.yaml``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from genolm.config_schema.base import Entry, PosFloat, PosInt, Section


class EmbedInput(Section):
    """``input``: the sequences to embed (unless a task is given)."""

    fasta: str | None = None
    csv: str | None = None
    n: PosInt | None = None


class ProbeSettings(Section):
    """``probe``: the logistic-regression probe of task mode."""

    n_train: PosInt | None = None
    n_eval: PosInt | None = None
    cs: Annotated[list[PosFloat], Field(min_length=1)] = [0.001, 0.01, 0.1, 1.0, 10.0]


class EmbedConfig(Entry):
    """``conf/embed.yaml``; ``data`` is the task of ``task=...`` (absent otherwise)."""

    model_path: Annotated[str, Field(min_length=1)]
    input: EmbedInput
    data: dict[str, Any] | None = None
    layer: int = -1
    pooling: Literal["mean", "max", "last", "cls"] = "mean"
    batch_size: PosInt = 256
    device: str = "auto"
    cache_dir: Annotated[str, Field(min_length=1)]
    probe: ProbeSettings = ProbeSettings()

    @model_validator(mode="after")
    def _one_source(self) -> EmbedConfig:
        given = [bool(self.input.fasta), bool(self.input.csv), self.data is not None]
        if sum(given) != 1:
            raise ValueError("set exactly one of input.fasta, input.csv and task (e.g. task=tf0)")
        return self
