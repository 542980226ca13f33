"""Positive control: a motif detector for one planted JASPAR motif, explained by ISM, then modisco + TOMTOM.

Usage: python experiments/interpret/planted_control.py [OUT_DIR] [--motif REST] [--n 200] [--data-dir data]

200 random 100-b sequences each get one site sampled from the motif's PFM (either strand); the
model is the soft maximum (logsumexp) over both strands of the PWM log-odds scan. Writes
``motifs.tsv`` and ``motif_<pattern>.png`` to OUT_DIR and prints the best match of each pattern.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from genolm.data.sequences import one_hot
from genolm.interpret.ism import ism_hypothetical, saturation_mutagenesis
from genolm.interpret.logos import plot_motif_match
from genolm.interpret.motifs import discover_motifs, jaspar_targets, match_motifs


def main() -> None:
    """Plant, explain, discover, match."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="experiments/interpret/planted")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--motif", default="REST")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    motifs = Path(args.data_dir) / "motifs"
    targets = jaspar_targets(motifs / "JASPAR2022_vertebrates.pfm",
                             motifs / "JASPAR2022_vertebrates.motif2factors.txt")
    motif = next(t for t in targets if t.name == args.motif)
    rng = np.random.default_rng(7)
    seqs = []
    for _ in range(args.n):
        codes = rng.integers(0, 4, 100)
        start = int(rng.integers(0, 100 - len(motif.ppm)))
        site = np.array([rng.choice(4, p=row / row.sum()) for row in motif.ppm])
        codes[start : start + len(site)] = 3 - site[::-1] if rng.random() < 0.5 else site
        seqs.append("".join("ACGT"[c] for c in codes))
    kernel = torch.tensor(np.log2(motif.ppm / 0.25), dtype=torch.float32).T[None]

    @torch.no_grad()
    def score(batch: list[str]) -> np.ndarray:
        x = torch.from_numpy(one_hot(batch)).transpose(1, 2)
        scans = [torch.nn.functional.conv1d(x, k)[:, 0] for k in (kernel, kernel.flip(1).flip(2))]
        return torch.logsumexp(torch.cat(scans, 1), 1).numpy()

    t0 = time.perf_counter()
    effects, _ = saturation_mutagenesis(score, seqs, progress=False)
    onehot = one_hot(seqs)
    patterns = discover_motifs(onehot, ism_hypothetical(effects, onehot)[1], n_leiden_runs=10)
    table = match_motifs(patterns, targets, top=3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "motifs.tsv", sep="\t", index=False, float_format="%.4g")
    by_id = {t.motif_id: t for t in targets}
    for pat in patterns:
        best = table[(table["pattern"] == pat.name) & (table["rank"] == 1)].iloc[0]
        name = f"{best['motif_id']} {best['motif_name']}"
        plot_motif_match(pat.cwm, pat.ppm, by_id[best["motif_id"]].ppm,
                         f"{pat.name} ({pat.n_seqlets} seqlets)",
                         f"best JASPAR match {name} (q={best['q_value']:.2g})", best["strand"] == "-",
                         out / f"motif_{pat.name}.png", int(best["offset"]))
        print(f"{pat.name}: {pat.n_seqlets} seqlets {pat.consensus} -> {name} "
              f"p={best['p_value']:.2g} q={best['q_value']:.2g}")
    print(f"planted {motif.motif_id} {motif.name} in {args.n} sequences; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
