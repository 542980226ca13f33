"""Design experiment: 100 GUE tf/0 test negatives, the shipped tf0 oracle, three algorithms, 10 edits.

Usage: python experiments/design/run.py [OUT_DIR] [--n 100] [--data-dir data]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from functools import partial
from pathlib import Path

import pandas as pd
import torch
import transformers

from genolm.checkpoints import load_classifier
from genolm.data.labeled import read_labeled_csv
from genolm.design.algorithms import annealing, genetic, greedy
from genolm.design.constraints import Constraints
from genolm.design.oracle import Oracle, classifier_oracle
from genolm.design.search import search
from genolm.io import markdown_table

ALGORITHMS = {"greedy": partial(greedy, rounds=10),
              "genetic": partial(genetic, rounds=10, population=64, mutation_rate=0.02),
              "annealing": partial(annealing, rounds=30, proposals=32)}


def throughput(score, seqs: list[str]) -> dict[str, float]:
    """Oracle sequences/s: one sequence per forward pass vs batches of 512."""
    t0 = time.perf_counter()
    for s in seqs[:200]:
        score([s])
    single = 200 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for lo in range(0, len(seqs), 512):
        score(seqs[lo : lo + 512])
    batched = len(seqs) / (time.perf_counter() - t0)
    return {"single": single, "batched": batched, "ratio": batched / single}


def main() -> None:
    """Run every algorithm from the same starts; summarise and time the oracle."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="experiments/design")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    data, out = Path(args.data_dir), Path(args.out)
    module = load_classifier(data / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0")
    score = classifier_oracle(module, target_class=1, output="prob", device="cpu")
    test = read_labeled_csv(data / "GUE" / "tf" / "0" / "test.csv")
    starts = test[test["label"] == 0].head(args.n)
    rows, trajectories = [], []
    for name, algorithm in ALGORITHMS.items():
        oracle = Oracle(score, batch_size=512)
        t0 = time.perf_counter()
        results, trajectory = search(oracle, starts["sequence"].tolist(), algorithm,
                                       Constraints(max_edits=10), starts["id"].tolist(), seed=0)
        seconds = time.perf_counter() - t0
        trajectories.append(trajectory.assign(algorithm=name))
        rows.append({"algorithm": name, "starts": len(results),
                     "mean_start_p": results["start_score"].mean(),
                     "mean_final_p": results["final_score"].mean(),
                     "share_final_gt_0.95": (results["final_score"] > 0.95).mean(),
                     "mean_edits": results["edits"].mean(),
                     "oracle_calls": int(results["oracle_calls"].sum()),
                     "wall_s": seconds})
    table = pd.DataFrame(rows)
    pd.concat(trajectories).to_csv(out / "trajectories.tsv", sep="\t", index=False, float_format="%.5g")
    speed = throughput(score, (test["sequence"].tolist() * 3)[:3000])
    text = "\n".join([
        "# Designing tf/0 binders", "",
        f"{len(starts)} GUE tf/0 test negatives (label 0), oracle `Mistral-DNA-v1-1M-hg38-finetuned-tf0` "
        "(p(class 1) = p(bind)), at most 10 substitutions from each start. greedy: 10 rounds of all "
        "single substitutions; genetic: 10 generations of 64; annealing: 30 rounds of 32 proposals.", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"transformers {transformers.__version__}.", "", markdown_table(table),
        f"Oracle throughput (101-b sequences): one per forward pass {speed['single']:.0f} seq/s, batches of "
        f"512 {speed['batched']:.0f} seq/s, ratio {speed['ratio']:.1f}x.", ""])
    (out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
