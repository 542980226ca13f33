"""Tables of experiments/gue/STRAND.md from genolm-eval and genolm-finetune multiruns.

Usage:
    python experiments/gue/strand_report.py OUT.md --eval SWEEP [SWEEP ...]
        [--finetune SWEEP --finetune-average SWEEP] [--seconds LABEL=SECONDS ...]

``--eval``: ``genolm-eval -m ... strand=forward,reverse,average`` sweeps, one per shipped
classifier; their per-job ``predictions_test.tsv`` give a paired bootstrap interval of the MCC
gain of ``average`` over ``forward``. ``--finetune``: a ``genolm-finetune -m data.rc_aug=false,true
seed=...`` sweep (tested on the forward strand); ``--finetune-average``: a ``genolm-eval -m
strand=average model_path=<each job's best.ckpt>`` sweep over the same runs. Sweeps run before the
rename (``ckpt_path=``, ``data=``) read the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers

from genolm.io import markdown_table
from genolm.training.sweep import collect

# the override naming the model and the task; the second names: sweeps from before the rename
MODEL_KEYS = ("model_path", "ckpt_path")
TASK_KEYS = ("task", "data")

N_BOOT, SEED = 2000, 0


def _override(overrides: str, *keys: str) -> str:
    """The value of the first of ``keys`` given as ``key=...`` in a job's override string."""
    for key in keys:
        found = re.search(rf"(?:^| ){re.escape(key)}=(\S+)", overrides)
        if found:
            return found.group(1)
    return ""


def mcc_rows(label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Binary MCC of every row of ``(B, n)`` label/prediction matrices (0 when undefined)."""
    tp = ((pred == 1) & (label == 1)).sum(-1).astype(float)
    tn = ((pred == 0) & (label == 0)).sum(-1).astype(float)
    fp = ((pred == 1) & (label == 0)).sum(-1).astype(float)
    fn = ((pred == 0) & (label == 1)).sum(-1).astype(float)
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.divide(tp * tn - fp * fn, denom, out=np.zeros_like(denom), where=denom > 0)


def paired_gain(forward: pd.DataFrame, average: pd.DataFrame) -> tuple[float, float, float]:
    """MCC(average) - MCC(forward) on the test set and its 95% paired bootstrap interval."""
    if forward["id"].tolist() != average["id"].tolist():
        raise ValueError("the two prediction tables list different records")
    label = forward["label"].to_numpy()
    rng = np.random.default_rng(SEED)
    idx = np.vstack([np.arange(len(label)), rng.integers(0, len(label), (N_BOOT, len(label)))])
    gains = mcc_rows(label[idx], average["pred"].to_numpy()[idx]) - mcc_rows(label[idx],
                                                                             forward["pred"].to_numpy()[idx])
    low, high = np.percentile(gains[1:], [2.5, 97.5])
    return float(gains[0]), float(low), float(high)


def strand_table(sweeps: list[Path]) -> pd.DataFrame:
    """Test MCC/AUROC per shipped classifier and strand, plus the paired MCC gain of ``average``."""
    rows = []
    for sweep in sweeps:
        jobs = collect(sweep)
        jobs["strand"] = jobs["overrides"].map(lambda s: _override(s, "strand"))
        jobs = jobs.set_index("strand")
        tables = {s: pd.read_csv(sweep / str(jobs.loc[s, "job"]) / "predictions_test.tsv", sep="\t")
                  for s in ("forward", "average")}
        gain, low, high = paired_gain(tables["forward"], tables["average"])
        row = {"classifier": Path(_override(jobs["overrides"].iloc[0], *MODEL_KEYS)).name,
               "test set": _override(jobs["overrides"].iloc[0], *TASK_KEYS),
               "records": len(tables["forward"])}
        for strand in ("forward", "reverse", "average"):
            row[f"MCC {strand}"] = jobs.loc[strand, "test/mcc"]
        for strand in ("forward", "reverse", "average"):
            row[f"AUROC {strand}"] = jobs.loc[strand, "test/auroc"]
        row["MCC average - forward [95% CI]"] = f"{gain:+.4f} [{low:+.4f}, {high:+.4f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def rc_aug_table(finetune: Path, average: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run and mean ± std test metrics of the rc_aug sweep (its test strand; average when given)."""
    runs = collect(finetune)
    runs["rc_aug"] = runs["overrides"].map(lambda s: _override(s, "data.rc_aug"))
    runs["seed"] = runs["overrides"].map(lambda s: _override(s, "seed"))
    extra = [json.loads((finetune / job / "metrics.json").read_text()) for job in runs["job"]]
    runs["epochs"] = [e["epochs"] for e in extra]
    (strand,) = {e["strand"] for e in extra}  # the sweep's test strand, one for all runs
    runs = runs.rename(columns={"test/mcc": f"MCC {strand}", "test/auroc": f"AUROC {strand}"})
    columns = [f"MCC {strand}", f"AUROC {strand}"]
    if average is not None:
        evals = collect(average)
        evals["job"] = evals["overrides"].map(lambda s: Path(_override(s, *MODEL_KEYS)).parent.parent.name)
        evals = evals.rename(columns={"test/mcc": "MCC average", "test/auroc": "AUROC average"})
        runs = runs.merge(evals[["job", "MCC average", "AUROC average"]], on="job", how="left")
        columns += ["MCC average", "AUROC average"]
    per_run = runs[["job", "rc_aug", "seed", "epochs", *columns]].sort_values(["rc_aug", "seed"])
    grouped = runs.groupby("rc_aug")[columns]
    summary = grouped.mean().map("{:.4f}".format) + " ± " + grouped.std(ddof=1).map("{:.4f}".format)
    summary.insert(0, "runs", runs.groupby("rc_aug").size())
    return per_run, summary.reset_index()


def main() -> None:
    """Write the tables, with the machine and wall times, to ``OUT.md`` and print them."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--eval", nargs="+", type=Path, default=[])
    parser.add_argument("--finetune", type=Path)
    parser.add_argument("--finetune-average", type=Path)
    parser.add_argument("--seconds", nargs="*", default=[], help="LABEL=SECONDS wall times")
    args = parser.parse_args()
    lines = [f"Generated {dt.date.today()} by `experiments/gue/strand_report.py` on "
             f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"transformers {transformers.__version__}.", ""]
    if args.eval:
        lines += ["### Shipped classifiers: test split by strand", "",
                  markdown_table(strand_table(args.eval)).rstrip(), ""]
    if args.finetune:
        per_run, summary = rc_aug_table(args.finetune, args.finetune_average)
        lines += ["### rc_aug: test metrics, mean ± std over seeds", "", markdown_table(summary).rstrip(), "",
                  "### rc_aug: every run", "", markdown_table(per_run).rstrip(), ""]
    if args.seconds:
        lines += ["Wall time:", *[f"- {label}: {float(s) / 60:.1f} min"
                                  for label, s in (x.rsplit("=", 1) for x in args.seconds)], ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
