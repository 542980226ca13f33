"""Hydra callback that tabulates every job of a multirun into ``summary.csv`` and ``summary.md``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from genolm.io import markdown_table

log = logging.getLogger("genolm.training.sweep")


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job folder with a ``metrics.json``: job, overrides, then every metric."""
    rows = []
    for metrics_file in sorted(Path(sweep_dir).glob("*/metrics.json"), key=lambda p: p.parent.name):
        job = metrics_file.parent
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = [line.removeprefix("- ").strip() for line in overrides_file.read_text().splitlines()
                     if line.startswith("- ")] if overrides_file.is_file() else []
        data = json.loads(metrics_file.read_text())
        rows.append({"job": job.name, "overrides": " ".join(overrides), **data.get("metrics", {})})
    return pd.DataFrame(rows)


def write_summary(sweep_dir: str | Path) -> pd.DataFrame:
    """Write ``summary.csv`` and ``summary.md`` in ``sweep_dir``; return the table."""
    table = collect(sweep_dir)
    if table.empty:
        log.warning("sweep summary: no metrics.json under %s", sweep_dir)
        return table
    test_cols = [c for c in table.columns if c.startswith("test/")]
    keep = ["job", "overrides"] + (test_cols + [c for c in ("val/mcc_best", "val/loss") if c in table]
                                   if test_cols else [c for c in table.columns if c.startswith("val/")])
    table = table[keep]
    table.to_csv(Path(sweep_dir) / "summary.csv", index=False)
    (Path(sweep_dir) / "summary.md").write_text(markdown_table(table))
    return table


class SweepSummary(Callback):
    """Write the sweep summary when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra hook: tabulate ``config.hydra.sweep.dir``."""
        table = write_summary(config.hydra.sweep.dir)
        if not table.empty:
            print(f"sweep summary ({len(table)} jobs): {Path(config.hydra.sweep.dir) / 'summary.md'}")
