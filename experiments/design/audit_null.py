"""Random-edit null for a ``genolm-optimize audit.enabled=true`` run (experiments/design/RESULTS.md).

For every design, ``--draws`` controls with as many random substitutions of the same start: the
JASPAR motifs they gain and the share of their edits inside those gained sites, beside the
designs' own numbers; and the share of design edits in the top 10% of ISM-important positions.

Usage: python experiments/design/audit_null.py RUN_DIR [--draws 20] [--data-dir data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.design.audit import edited_positions, gained_sites, random_edits
from genolm.design.motifs import hits, read_jaspar_pfm


def in_sites(positions: np.ndarray, found: list[tuple[str, int, int]]) -> int:
    """How many positions lie inside any of the sites."""
    return sum(any(lo <= i < hi for _, lo, hi in found) for i in positions)


def main() -> None:
    """Print the designs' numbers next to the random-edit null."""
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    parser.add_argument("--rel-threshold", type=float, default=0.9)
    args = parser.parse_args()
    motifs = read_jaspar_pfm(Path(args.data_dir) / "motifs" / "JASPAR2022_vertebrates.pfm")
    results = pd.read_csv(args.run / "results.tsv", sep="\t")
    edits = pd.read_csv(args.run / "audit_edits.tsv", sep="\t", keep_default_na=False)
    null_gained, null_in, null_edits = [], 0, 0
    for n, row in enumerate(results.itertuples(index=False)):
        before = hits(row.start, motifs, args.rel_threshold)
        k = len(edited_positions(row.start, row.final))
        for d in range(args.draws):
            control = random_edits(row.start, k, np.random.default_rng([7, n, d]))
            gained = sorted(hits(control, motifs, args.rel_threshold) - before)
            null_gained.append(len(gained))
            null_in += in_sites(edited_positions(row.start, control),
                                gained_sites(control, gained, motifs, args.rel_threshold))
            null_edits += k
    design_in = (edits["gained_motifs"] != "").mean()
    design_gained = results["gained"].fillna("").map(lambda g: len([x for x in g.split(";") if x]))
    print(f"designs: {len(results)}, edits {len(edits)}, {args.draws} random controls per design")
    print(f"edits in gained JASPAR sites: designs {design_in:.1%}, random {null_in / null_edits:.1%}")
    print(f"motifs gained per sequence: designs {design_gained.mean():.2f}, random controls "
          f"{np.mean(null_gained):.2f} (sd {np.std(null_gained):.2f})")
    for col in ("start_pct", "final_pct"):
        print(f"{col}: mean {edits[col].mean():.3f} (random 0.5), share in top 10% "
              f"{(edits[col] > 0.9).mean():.1%} (random 10%)")


if __name__ == "__main__":
    main()
