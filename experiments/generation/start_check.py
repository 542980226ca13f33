"""Side check: held-out bits/base and sampled k-mer spectra after a [SEP] or a [CLS] start token.

Usage: python experiments/generation/start_check.py YEAST_MODEL [--data-dir data] [--n 2000]

Prints the yeast LM's bits/base on all 200-b windows of held-out chromosome I scored after each
start token, and for one sample set per start token (T = 1.0, seed 0, ``--n`` sequences of 200 b)
the 4- and 6-mer JSD to chromosome I of three stretches of the sequences (bases 0-20, 20-100,
100-200, each compared with the same stretch of the real windows).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from genolm.checkpoints import load_causal_lm
from genolm.generation.realism import jsd, kmer_spectrum
from genolm.generation.report import real_windows
from genolm.generation.sampling import generate_dna
from genolm.inference.lm_bits import STARTS, total_bits_per_base, window_bits
from genolm.pipelines.generate import read_dna

YEAST = "yeast/R64-1-1_chrI_X_XIII_softmasked.fa.gz"
STRETCHES = ((0, 20), (20, 100), (100, 200))


def stretch_jsd(seqs: list[str], reference: list[str], lo: int, hi: int, k: int) -> float:
    """JSD (bits) of the k-mer spectra of bases ``lo:hi`` of ``seqs`` and of ``reference``."""
    return jsd(kmer_spectrum([s[lo:hi] for s in seqs], k), kmer_spectrum([r[lo:hi] for r in reference], k))


def main() -> None:
    """Score chromosome I after each start token, then sample after each and compare stretches."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tok = load_causal_lm(args.model)
    fasta = str(Path(args.data_dir) / YEAST)
    reference = real_windows(read_dna([fasta], ["I"]), 200, 100_000, seed=0)
    for start in STARTS:
        t0 = time.perf_counter()
        bits = total_bits_per_base(window_bits(model, tok, reference, start=start))
        print(f"chrI, {len(reference)} windows, start={start}: {bits:.6f} bits/base "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    for start in STARTS:
        seqs = generate_dna(model, tok, args.n, 200, temperature=1.0, seed=0, batch_size=250,
                            progress=False, start=start)["sequence"].tolist()
        parts = [f"[{lo}:{hi}] k{k} {stretch_jsd(seqs, reference, lo, hi, k):.5f}"
                 for lo, hi in STRETCHES for k in (4, 6)]
        print(f"T=1.0 seed 0 start={start}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
