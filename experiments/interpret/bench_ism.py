"""Batched ISM vs a per-mutant loop on 200-b hg38 windows with the shipped tf0 classifier.

Usage: python experiments/interpret/bench_ism.py [--n 3] [--rounds 3] [--data-dir data]

Both score the same mutants with the same score function (class-1 logit, fast Mixtral trunk, one
torch thread); the loop calls it once per mutant, the batched path once per chunk of 512. Prints
mutants/s of each (median of ``rounds`` alternating rounds) and the ratio as one markdown line.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from genolm.checkpoints import load_classifier
from genolm.data.sequences import iter_records
from genolm.interpret.ism import classifier_scorer, ism_one_by_one, saturation_mutagenesis


def windows(path: Path, n: int, length: int = 200) -> list[str]:
    """The first ``n`` ``length``-base windows of the FASTA without N (upper case)."""
    seq = next(iter(iter_records(path)))[1].upper()
    out = []
    for lo in range(0, len(seq) - length, length):
        if "N" not in seq[lo : lo + length]:
            out.append(seq[lo : lo + length])
        if len(out) == n:
            break
    return out


def main() -> None:
    """Time both paths and print the benchmark line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data_dir)
    module = load_classifier(data / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0")
    score = classifier_scorer(module, target_class=1, output="logit", device="cpu")
    seqs = windows(data / "hg38" / "chr2_1-2333275.fa.gz", args.n)
    mutants = 3 * sum(len(s) for s in seqs)
    loop, batched = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        naive = np.stack([ism_one_by_one(score, s) for s in seqs])
        loop.append(mutants / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        effects, _ = saturation_mutagenesis(score, seqs, batch_size=512, progress=False)
        batched.append(mutants / (time.perf_counter() - t0))
        assert np.allclose(effects, naive, atol=2e-4), np.abs(effects - naive).max()
    fast, slow = float(np.median(batched)), float(np.median(loop))
    print(f"| batched ISM vs per-mutant loop | {args.n} x 200 b hg38 windows ({mutants:,} mutants), "
          f"tf0 classifier, 1 thread, {platform.machine()} | {fast:,.0f} vs {slow:,.0f} mutants/s "
          f"({fast / 3:,.0f} vs {slow / 3:,.0f} bases/s) | {fast / slow:.1f}x |")


if __name__ == "__main__":
    main()
