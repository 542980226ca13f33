"""Zero-shot exon vs intron experiment: all 20,000 course SNP pairs, every score, speed check.

Usage: python experiments/zeroshot/run.py CKPT_OR_HF_DIR [OUT_DIR] [--loop-pairs N] [--batched-pairs M]
Writes OUT_DIR (default experiments/zeroshot) /RESULTS.md, report.png and report.tsv.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_baselines import score_pairs_one_by_one  # noqa: E402  (the benchmarks' baseline)

from genolm.checkpoints import load_causal_lm
from genolm.inference.batches import POOLINGS
from genolm.scoring.effects import score_variants
from genolm.scoring.report import group_report, markdown_report, plot_groups
from genolm.scoring.variants import read_fasta_pairs

SCORES = ["l2", "cosine", "llr"]


def load_pairs(data_dir: Path) -> pd.DataFrame:
    """The course's 10,000 exon and 10,000 intron ref/alt pairs."""
    snp = data_dir / "SNP"
    frames = [read_fasta_pairs(snp / f"SNP{g}_ref_201b.fasta.gz", snp / f"SNP{g}_alt_201b.fasta.gz", g)
              for g in ("exon", "intron")]
    return pd.concat(frames, ignore_index=True)


def speed(model, tok, pairs: pd.DataFrame, n_loop: int, n_batched: int) -> dict[str, float]:
    """Pairs/s of the per-pair loop (course, ``n_loop`` pairs) and batched (``n_batched`` pairs).

    Random pairs, the loop's first; median of 3 alternating rounds after a warm-up. The loop gets fewer
    pairs so that both run for a few seconds and the machine's drift hits both alike.
    """
    sub = pairs.sample(max(n_loop, n_batched), random_state=0)
    ref, alt = sub["ref"].tolist(), sub["alt"].tolist()
    score_variants(model, tok, ref[:256], alt[:256], batch_size=128, progress=False)
    loops, batched = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        score_pairs_one_by_one(model, tok, ref[:n_loop], alt[:n_loop])
        loops.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        score_variants(model, tok, ref[:n_batched], alt[:n_batched], batch_size=128, progress=False)
        batched.append(time.perf_counter() - t0)
    loop, fast = n_loop / statistics.median(loops), n_batched / statistics.median(batched)
    return {"loop_pairs_per_s": loop, "batched_pairs_per_s": fast, "ratio": fast / loop,
            "loop_pairs": n_loop, "batched_pairs": n_batched}


def main() -> None:
    """Score everything with each pooling, report, and time batched vs per-pair scoring."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out", nargs="?", default="experiments/zeroshot")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--loop-pairs", type=int, default=500)
    parser.add_argument("--batched-pairs", type=int, default=4000)
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_num_threads(os.cpu_count() or 1)
    model, tok = load_causal_lm(args.model)
    pairs = load_pairs(Path(args.data_dir))
    sections, timings = [], []
    for pooling in POOLINGS:
        t0 = time.perf_counter()
        scores = score_variants(model, tok, pairs["ref"].tolist(), pairs["alt"].tolist(),
                                ids=pairs["id"].tolist(), groups=pairs["group"].tolist(),
                                pooling=pooling, batch_size=128)
        timings.append(f"- pooling `{pooling}`: {len(scores)} pairs in {time.perf_counter() - t0:.1f} s")
        table = group_report(scores, SCORES if pooling == "mean" else ["l2", "cosine"], "exon", "intron")
        table.insert(0, "pooling", pooling)
        sections.append(table)
        if pooling == "mean":
            plot_groups(scores, SCORES, out / "report.png")
    report = pd.concat(sections, ignore_index=True)
    report.to_csv(out / "report.tsv", sep="\t", index=False, float_format="%.5g")
    fast = speed(model, tok, pairs, args.loop_pairs, args.batched_pairs)
    header = (f"# Zero-shot exon vs intron variant effects\n\nModel `{args.model}`; all 10,000 exon and "
              f"10,000 intron pairs of the course (`SNP/*_201b.fasta.gz`). Machine: "
              f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"transformers {transformers.__version__}. The `llr` row appears with mean pooling only "
              "(it does not depend on pooling).")
    md = [markdown_report(report[report["pooling"] == p].drop(columns="pooling"), "exon", "intron",
                          f"## pooling: {p}") for p in POOLINGS]
    speed_md = (f"## Speed\n\nSame model and machine, every score, median of 3 alternating rounds: "
                f"per-pair loop (the course's way, one forward per sequence) on {args.loop_pairs} random "
                f"pairs {fast['loop_pairs_per_s']:.1f} pairs/s; batched `score_variants` (128 pairs per "
                f"pass, batches side by side on the cores) on {args.batched_pairs} pairs including those "
                f"{fast['batched_pairs_per_s']:.1f} pairs/s; ratio {fast['ratio']:.1f}x.\n")
    text = "\n".join([header, "", *md, "Wall time:", *timings, "", speed_md, "![report](report.png)", ""])
    (out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
