"""Generation experiment: a yeast LM sampled at several temperatures and seeds, judged against real DNA.

Usage: python experiments/generation/run.py YEAST_MODEL [OUT_DIR] [--n 2000] [--length 200]
       [--seeds 0 1 2] [--temperatures 0.7 0.9 0.95 1.0 1.05 1.3] [--start auto] [--speed-n 0]

Every LM set (one per temperature) and both baselines (i.i.d. bases, 3rd-order Markov chain) are
drawn once per seed, as are as many real 200-b windows of the training chromosomes X and XIII (a
yardstick: real yeast DNA that is not chromosome I). The JSD of k = 1..6 to all 200-b windows of
held-out chromosome I is reported as mean and standard deviation over the seeds. Writes to OUT_DIR
(default experiments/generation): report_seeds.tsv (one row per set and seed), report.tsv (mean
and sd), latest.md (the table, wall times and the LM-vs-Markov-3 comparison), pca_4mer.png (first
seed, a few sets) and jsd_by_k.png (mean ± sd).
RESULTS.md is written by hand from latest.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_baselines import generate_without_cache  # noqa: E402  (the benchmarks' baseline)

from genolm.checkpoints import load_causal_lm
from genolm.generation.realism import NoveltyIndex
from genolm.generation.report import KS, baselines, plot_realism, real_windows, realism_table
from genolm.generation.sampling import generate_dna
from genolm.inference.lm_bits import resolve_start
from genolm.pipelines.generate import read_dna

TEMPERATURES = (0.7, 0.9, 0.95, 1.0, 1.05, 1.3)
YEAST = "yeast/R64-1-1_chrI_X_XIII_softmasked.fa.gz"
# the PCA shows the reference and these sets of the first seed, PCA_N sequences each (all 16k+ points hide it)
PCA_SETS, PCA_N = ("LM T=0.7", "LM T=1.0", "LM T=1.3", "iid", "markov3"), 1000
STATS = [f"jsd_k{k}" for k in KS] + ["gc_mean", "gc_ks", "longest_match_median", "share_match_ge30"]


def speed(model, tok, n: int, length: int, start: str) -> dict[str, float]:
    """Bases/s: one sequence at a time without KV cache (the course) vs batched with cache."""
    t0 = time.perf_counter()
    for i in range(n):
        generate_without_cache(model, tok, length, seed=i, start=start)
    slow = n * length / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    generate_dna(model, tok, n, length, seed=0, batch_size=n, progress=False, start=start)
    fast = n * length / (time.perf_counter() - t0)
    return {"loop_bases_per_s": slow, "batched_bases_per_s": fast, "ratio": fast / slow}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample sd (ddof=1) of every statistic per set, sets in first-seen order."""
    grouped = rows.groupby("set", sort=False)
    mean, sd = grouped[STATS].mean(), grouped[STATS].std(ddof=1)
    out = mean.join(sd.add_suffix("_sd")).reset_index()
    out.insert(1, "n", grouped["n"].first().to_numpy())
    out.insert(2, "seeds", grouped.size().to_numpy())
    return out


def mean_sd_table(summary: pd.DataFrame) -> str:
    """Markdown table of ``mean ± sd`` cells (JSD with 5 decimals)."""
    cols = [f"jsd_k{k}" for k in KS] + ["gc_mean", "gc_ks", "longest_match_median", "share_match_ge30"]
    lines = ["| set | n | seeds | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|"]
    for row in summary.itertuples(index=False):
        cells = [f"{getattr(row, c):.5f} ± {getattr(row, c + '_sd'):.5f}" if c.startswith("jsd") else
                 f"{getattr(row, c):.3f} ± {getattr(row, c + '_sd'):.3f}" for c in cols]
        lines.append(f"| {row.set} | {row.n} | {row.seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versus_markov(rows: pd.DataFrame, baseline: str = "markov3", ks: tuple[int, ...] = (4, 6)) -> list[str]:
    """Per LM set and k: mean JSD difference to ``baseline`` and whether the seed ranges overlap.

    ``beats`` means every seed of the LM set is below every seed of the baseline (no overlap of
    the per-seed ranges); ``z`` is the mean difference over its standard error,
    sqrt((sd_lm^2 + sd_base^2) / seeds).
    """
    base = rows[rows["set"] == baseline]
    lines = []
    for name, lm in rows[rows["set"].str.startswith("LM")].groupby("set", sort=False):
        parts = []
        for k in ks:
            col = f"jsd_k{k}"
            a, b = lm[col].to_numpy(), base[col].to_numpy()
            se = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / len(a))
            verdict = "below" if a.max() < b.min() else "above" if a.min() > b.max() else "overlap"
            diff = a.mean() - b.mean()
            parts.append(f"k={k}: {diff:+.5f} (z {diff / se:+.1f}, {verdict})")
        lines.append(f"- {name} − {baseline}: " + "; ".join(parts))
    return lines


def main() -> None:
    """Generate per seed and temperature, compare with chromosome I and the baselines, summarise."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out", nargs="?", default="experiments/generation")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--ref-n", type=int, default=100_000, help="real windows (all chrI ones if fewer)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES))
    parser.add_argument("--start", default="auto", choices=["auto", "sep", "bos"])
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--speed-n", type=int, default=0, help="sequences for the speed check (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall = time.perf_counter()
    out, fasta = Path(args.out), str(Path(args.data_dir) / YEAST)
    out.mkdir(parents=True, exist_ok=True)
    start = resolve_start(args.start, args.model)
    model, tok = load_causal_lm(args.model)
    train = read_dna([fasta], ["X", "XIII"])
    reference = real_windows(read_dna([fasta], ["I"]), args.length, args.ref_n, seed=0)
    novelty = NoveltyIndex(train)
    tables, timing, first_sets = [], {}, {}
    for seed in args.seeds:
        sets = {}
        for temp in args.temperatures:
            t0 = time.perf_counter()
            table = generate_dna(model, tok, args.n, args.length, temperature=temp, seed=seed,
                                 batch_size=args.batch_size, progress=False, start=start)
            sets[f"LM T={temp}"] = table["sequence"].tolist()
            timing.setdefault(temp, []).append(time.perf_counter() - t0)
            print(f"seed {seed} T={temp}: {timing[temp][-1]:.1f} s", flush=True)
        sets.update(baselines(train, args.n, args.length, 3, seed=seed))
        tables.append(realism_table(sets, reference, novelty).assign(seed=seed))
        # yardstick: real training-chromosome windows (novelty skipped: they are training DNA)
        real = {"real X+XIII": real_windows(train, args.length, args.n, seed=seed)}
        tables.append(realism_table(real, reference, None).assign(seed=seed))
        first_sets = first_sets or sets
    rows = pd.concat(tables, ignore_index=True)
    summary = summarise(rows)
    rows.to_csv(out / "report_seeds.tsv", sep="\t", index=False, float_format="%.6g")
    summary.to_csv(out / "report.tsv", sep="\t", index=False, float_format="%.6g")
    shown = {name: first_sets[name][:PCA_N] for name in PCA_SETS if name in first_sets}
    plot_realism({**shown, "real held-out (chrI)": reference}, summary, out)  # real drawn on top
    fast = speed(model, tok, args.speed_n, args.length, start) if args.speed_n else None
    text = "\n".join([
        f"Model `{args.model}`; sampling starts from `{start}` (--start {args.start}). {args.n} sequences "
        f"of {args.length} b per set and seed (seeds {', '.join(map(str, args.seeds))}), pure "
        f"temperature sampling. Reference: {len(reference)} real {args.length}-b windows of held-out "
        "chromosome I (the same for every seed). JSD in bits, mean ± sd (ddof=1) over seeds.", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, 1 torch thread, torch "
        f"{torch.__version__}, transformers {transformers.__version__}.", "",
        mean_sd_table(summary), "LM minus Markov-3 (mean over seeds):", *versus_markov(rows), "",
        "Wall time (sampling + log-likelihood, per set of n):",
        *[f"- T={t}: {np.mean(s):.1f} s mean over {len(s)} seeds" for t, s in timing.items()],
        f"- whole script: {time.perf_counter() - wall:.0f} s", ""])
    if fast:
        text += (f"\nSpeed: {args.speed_n} sequences of {args.length} b, one at a time without KV cache "
                 f"{fast['loop_bases_per_s']:.0f} bases/s; batched with KV cache "
                 f"{fast['batched_bases_per_s']:.0f} bases/s; ratio {fast['ratio']:.1f}x.\n")
    (out / "latest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
