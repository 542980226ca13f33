"""k-mer logistic-regression baseline on GUE tasks: the simplest classifier beside every finetuned DNA LM.

Usage: python experiments/gue/kmer_baseline.py [--shrink-over ROWS] OUT.md TASK=DIR [TASK=DIR ...]

DIR is a GUE task folder with train.csv, dev.csv and test.csv (columns sequence,label). Tasks
without train.csv (EMP, splice) train on dev.csv less a stratified 10% slice (seed 42) that serves
as dev; the table says so. Grid: largest k in 3..6 (features k = 1..k) x C in 0.01, 0.1, 1, 10;
``--shrink-over ROWS`` cuts C to 0.1, 1 for training sets over ROWS rows (off by default). Fit
seconds cover features and the grid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import pandas as pd
import sklearn
from sklearn.model_selection import train_test_split

from genolm.baselines.kmer import evaluate, fit_kmer_logreg
from genolm.errors import GenolmError

KS = (3, 4, 5, 6)
CS = (0.01, 0.1, 1, 10)
BIG_CS = (0.1, 1)
SPLIT_SEED = 42


def read_split(path: Path) -> pd.DataFrame:
    """One GUE csv with columns sequence,label."""
    if not path.is_file():
        raise GenolmError(f"{path}: no such file")
    table = pd.read_csv(path)
    missing = {"sequence", "label"} - set(table.columns)
    if missing:
        raise GenolmError(f"{path}: missing column(s) {sorted(missing)}; want sequence,label")
    return table


def load_task(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """Train, dev and test tables of one task and a note on where train and dev came from."""
    test = read_split(folder / "test.csv")
    dev = read_split(folder / "dev.csv")
    if (folder / "train.csv").is_file():
        return read_split(folder / "train.csv"), dev, test, "train / dev / test"
    train, dev = train_test_split(dev, test_size=0.1, stratify=dev["label"], random_state=SPLIT_SEED)
    return train, dev, test, "no train.csv: dev 90% / dev 10% (seed 42) / test"


def run_task(name: str, folder: Path, shrink_over: int | None = None) -> dict:
    """Fit the grid on one task and score the chosen model on its test split."""
    train, dev, test, splits = load_task(folder)
    cs = BIG_CS if shrink_over is not None and len(train) > shrink_over else CS
    start = time.perf_counter()
    fit = fit_kmer_logreg(train["sequence"], train["label"], dev["sequence"], dev["label"], ks=KS, cs=cs)
    seconds = time.perf_counter() - start
    metrics = evaluate(fit.model, test["sequence"], test["label"])
    row = {
        "task": name, "k": fit.k, "C": fit.c, "dev MCC": round(fit.dev_mcc, 4),
        "test MCC": round(metrics["mcc"], 4), "test AUROC": round(metrics["auroc"], 4),
        "fit s": round(seconds, 1), "n train": len(train), "splits": splits,
        "grid C": ", ".join(f"{c:g}" for c in cs),
    }
    print(f"{name}: {row}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    """Rows as a markdown table."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Fit and score every TASK=DIR, then write and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shrink-over", type=int, metavar="ROWS", help="C grid 0.1, 1 above ROWS train rows")
    parser.add_argument("out", type=Path, help="markdown file to write")
    parser.add_argument("tasks", nargs="+", help="TASK=DIR; DIR holds dev.csv, test.csv and maybe train.csv")
    args = parser.parse_args(argv)
    tasks = [spec.split("=", 1) for spec in args.tasks]
    if any(len(t) != 2 or not t[0] or not t[1] for t in tasks):
        parser.error(f"tasks must be TASK=DIR, got {args.tasks}")
    start = time.perf_counter()
    try:
        rows = [run_task(name, Path(folder), args.shrink_over) for name, folder in tasks]
    except GenolmError as err:
        raise SystemExit(f"error: {err}") from None
    total = time.perf_counter() - start
    text = "\n".join([
        "# k-mer logistic-regression baseline on GUE (test split)",
        "",
        f"Generated {dt.date.today()} by `experiments/gue/kmer_baseline.py` on {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, scikit-learn {sklearn.__version__}; total {total / 60:.1f} min.",
        "",
        markdown(rows),
        "",
        "Features: overlapping k-mer frequencies over A/C/G/T for k = 1..k (each k sums to 1 per",
        "sequence; k-mers with N skipped), each column divided by its largest training value. Model: L2",
        f"logistic regression (lbfgs), fitted on train; largest k in {KS} and C in the row's grid chosen",
        "by dev MCC. Fit seconds include features and the whole grid; the chosen model (fitted on train",
        "only) is scored on test.",
        "",
    ])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
