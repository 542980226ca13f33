"""Benchmark worker: in-silico saturation mutagenesis (ISM) of 200-b hg38 windows, tf0 classifier.

Usage: python experiments/benchmarks/ism.py [--data-dir data] [--n 3] [--rounds 3] [--device cpu]

Three ways to get the same effects (class-1 logit, one torch thread), timed in alternating rounds
(median mutants/s of ``rounds``):

- loop: :func:`genolm.interpret.ism.ism_one_by_one`, one call of the fast-trunk score function per
  mutant;
- batched: :func:`~genolm.interpret.ism.saturation_mutagenesis` with the same score function,
  the reference and its ``3 L`` mutants in chunks of 512 whole sequences;
- prefix: the same function with :class:`genolm.interpret.ism_prefix.PrefixClassifierScorer`
  (what ``genolm-interpret`` uses): the reference's token prefix computed once, each group of
  mutants run only from its first differing token.

Effects of the three must agree within 2e-4. Prints a RESULT line for ``run.py`` and the markdown
rows of ``experiments/interpret/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from common import emit

from genolm.checkpoints import load_classifier
from genolm.data.sequences import iter_records
from genolm.interpret.ism import classifier_scorer, ism_one_by_one, saturation_mutagenesis
from genolm.interpret.ism_prefix import PrefixClassifierScorer

TF0 = Path("models") / "Mistral-DNA-v1-1M-hg38-finetuned-tf0"


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


def measure(data: Path, n: int, rounds: int, device: str) -> dict:
    """Mutants/s of the loop, the batched and the prefix-sharing path, and their ratios."""
    module = load_classifier(data / TF0)
    score = classifier_scorer(module, target_class=1, output="logit", device=device)
    prefix = PrefixClassifierScorer(module, target_class=1, output="logit", device=device)
    seqs = windows(data / "hg38" / "chr2_1-2333275.fa.gz", n)
    mutants = 3 * sum(len(s) for s in seqs)
    paths = {"loop": lambda: np.stack([ism_one_by_one(score, s) for s in seqs]),
             "batched": lambda: saturation_mutagenesis(score, seqs, batch_size=512, progress=False)[0],
             "prefix": lambda: saturation_mutagenesis(prefix, seqs, batch_size=512, progress=False)[0]}
    saturation_mutagenesis(prefix, seqs[:1], progress=False)  # warm-up (rotary tables, allocator)
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        effects = {}
        for name, run in paths.items():
            t0 = time.perf_counter()
            effects[name] = run()
            rates[name].append(mutants / (time.perf_counter() - t0))
        for name in ("batched", "prefix"):
            gap = float(np.abs(effects[name] - effects["loop"]).max())
            assert gap < 2e-4, f"{name} effects differ from the loop's by {gap}"
    med = {name: float(np.median(r)) for name, r in rates.items()}
    return {"path": "ism", "device": device, "windows": n, "length": 200, "mutants": mutants,
            "rounds": rounds, "threads": torch.get_num_threads(), "mutants_per_s": med,
            "batched_vs_loop": med["batched"] / med["loop"], "prefix_vs_loop": med["prefix"] / med["loop"],
            "prefix_vs_batched": med["prefix"] / med["batched"]}


def markdown(row: dict) -> list[str]:
    """The result as markdown table rows (one per path)."""
    rate = row["mutants_per_s"]
    out = ["| ISM path | mutants/s | bases/s | vs per-mutant loop |", "|---|---|---|---|"]
    for name, label in (("loop", "per-mutant loop"), ("batched", "generic batched (chunks of 512)"),
                        ("prefix", "prefix-sharing batched")):
        ratio = rate[name] / rate["loop"]
        out.append(f"| {label} | {rate[name]:,.0f} | {rate[name] / 3:,.0f} | {ratio:.1f}x |")
    return out


def main() -> None:
    """Time the three paths; print the RESULT line and the markdown rows."""
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", nargs="?", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    row = measure(Path(args.data_dir), args.n, args.rounds, args.device)
    print(f"{args.n} x 200 b hg38 windows ({row['mutants']:,} mutants), tf0 classifier, class-1 logit, "
          f"1 thread, {args.device}, median of {args.rounds} rounds:")
    print("\n".join(markdown(row)))
    emit(row)


if __name__ == "__main__":
    main()
