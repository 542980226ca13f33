"""Schema of ``genolm-benchmark`` (``conf/benchmark.yaml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from genolm.config_schema.base import Entry, PosInt, Section


class Bootstrap(Section):
    """``bootstrap``: test-set resampling of the table's intervals."""

    n: PosInt = 1000
    seed: int = 0
    level: Annotated[float, Field(gt=0, lt=1)] = 0.95


class BenchmarkConfig(Entry):
    """``conf/benchmark.yaml``."""

    tasks: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    backbones: dict[str, Annotated[str, Field(min_length=1)]] | None = None
    seeds: PosInt = 3
    baselines: list[Literal["kmer", "cnn"]] = []
    probe: bool = False
    finetune: list[str] = []
    reference: str | None = None
    out_dir: Annotated[str, Field(min_length=1)]
    aggregate: bool = False
    extra_runs: dict[str, list[str]] | None = None
    bootstrap: Bootstrap = Bootstrap()
