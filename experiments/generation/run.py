"""Generation experiment: a yeast LM sampled at three temperatures, judged against real DNA.

Usage: python experiments/generation/run.py YEAST_MODEL [OUT_DIR] [--n 500] [--length 200]
Writes OUT_DIR (default experiments/generation) /RESULTS.md, report.tsv, pca_4mer.png, jsd_by_k.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import transformers

from genolm.checkpoints import load_causal_lm
from genolm.generate import read_dna
from genolm.inference.generation import generate_dna
from genolm.inference.generation_report import baselines, plot_realism, real_windows, realism_table
from genolm.inference.realism import NoveltyIndex
from genolm.sweep import markdown_table

TEMPERATURES = (0.7, 1.0, 1.3)
YEAST = "yeast/R64-1-1_chrI_X_XIII_softmasked.fa.gz"


def speed(model, tok, n: int, length: int) -> dict[str, float]:
    """Bases/s: one sequence at a time without KV cache (the course) vs batched with cache."""
    t0 = time.perf_counter()
    for i in range(n):
        generate_dna(model, tok, 1, length, seed=i, batch_size=1, progress=False, use_cache=False)
    slow = n * length / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    generate_dna(model, tok, n, length, seed=0, batch_size=n, progress=False)
    fast = n * length / (time.perf_counter() - t0)
    return {"loop_bases_per_s": slow, "batched_bases_per_s": fast, "ratio": fast / slow}


def main() -> None:
    """Generate, compare with real held-out chromosome I and baselines, time both samplers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out", nargs="?", default="experiments/generation")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--speed-n", type=int, default=32)
    args = parser.parse_args()
    out, fasta = Path(args.out), str(Path(args.data_dir) / YEAST)
    model, tok = load_causal_lm(args.model)
    train = read_dna([fasta], ["X", "XIII"])
    reference = real_windows(read_dna([fasta], ["I"]), args.length, args.n, seed=0)
    sets, timing = {}, []
    for temp in TEMPERATURES:
        t0 = time.perf_counter()
        table = generate_dna(model, tok, args.n, args.length, temperature=temp, seed=0, batch_size=125)
        sets[f"LM T={temp}"] = table["sequence"].tolist()
        timing.append(f"- T={temp}: {args.n} sequences in {time.perf_counter() - t0:.1f} s")
    sets.update(baselines(train, args.n, args.length, 3, seed=0))
    results = realism_table(sets, reference, NoveltyIndex(train))
    results.to_csv(out / "report.tsv", sep="\t", index=False, float_format="%.5g")
    plot_realism({"real held-out (chrI)": reference, **sets}, results, out)
    fast = speed(model, tok, args.speed_n, args.length)
    text = "\n".join([
        "# Generation: yeast LM vs real DNA and baselines", "",
        f"Model `{args.model}` (genolm-pretrain experiment=pretrain_yeast: chromosomes X and XIII for "
        f"training, I held out). {args.n} sequences of {args.length} b per set, pure temperature "
        f"sampling (no top-k/top-p, no repetition penalty). Reference: {len(reference)} real {args.length}-b "
        "windows of held-out chromosome I. Baselines: i.i.d. bases at the training GC share and a "
        "3rd-order Markov chain fit on X + XIII. Novelty: longest exact match against X + XIII "
        "(both strands).", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"transformers {transformers.__version__}.", "",
        markdown_table(results), "Wall time:", *timing, "",
        f"## Speed\n\n{args.speed_n} sequences of {args.length} b: one at a time without KV cache (the "
        f"course's way) {fast['loop_bases_per_s']:.0f} bases/s; batched with KV cache "
        f"{fast['batched_bases_per_s']:.0f} bases/s; ratio {fast['ratio']:.1f}x.", "",
        "![PCA](pca_4mer.png) ![JSD](jsd_by_k.png)", ""])
    (out / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
