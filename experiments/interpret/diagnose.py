"""Why TF-MoDISco finds no tf0 pattern: seqlet counts, BPE segmentation effects, ISM vs IG, a PWM baseline.

Usage: python experiments/interpret/diagnose.py RUN_DIR [--data-dir data]

RUN_DIR is a ``genolm-interpret`` run folder of the shipped tf0 classifier (``ism.npz`` and
``attributions.npz``). Prints markdown lines:

* seqlets modisco-lite extracts from the ISM-derived contributions for three window settings;
* the share of single-base mutants that change the BPE segmentation beyond the mutated token and
  the mean |ISM effect| of those vs the others;
* the median per-sequence Pearson correlation of ISM-derived and IG per-base contributions;
* the JASPAR motifs whose best PWM scan score separates tf0 test positives from negatives best
  (AUROC), a model-free check of how motif-driven the task is.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from genolm.checkpoints import load_classifier
from genolm.data.labeled import read_labeled_csv
from genolm.design.motifs import read_jaspar_pfm, scan
from genolm.interpret.ism import mutants


def seqlet_counts(contrib: np.ndarray) -> list[str]:
    """Seqlets (positive / negative by summed contribution) per (window, flank) setting."""
    from modiscolite.extract_seqlets import extract_seqlets

    lines = []
    for window, flank in ((21, 10), (15, 5), (11, 3)):
        coords, threshold = extract_seqlets(
            attribution_scores=contrib, window_size=window, flank=flank, suppress=window // 2 + flank,
            target_fdr=0.2, min_passing_windows_frac=0.03, max_passing_windows_frac=0.2,
            weak_threshold_for_counting_sign=0.8)
        sums = np.array([contrib[c.example_idx, c.start + flank : c.end - flank].sum() for c in coords])
        lines.append(f"- window {window}, flank {flank}: {len(coords)} seqlets "
                     f"({int((sums > 0).sum())} positive, {int((sums < 0).sum())} negative), "
                     f"threshold {threshold:.3f}")
    return lines


def segmentation(tokenizer, seqs: list[str], effects: np.ndarray) -> str:
    """|effect| of mutants that keep vs change the token boundaries of the reference."""
    def bounds(seq: str) -> list[tuple[int, int]]:
        return tokenizer(seq, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]

    keep, change = [], []
    for row, seq in enumerate(seqs):
        ref = bounds(seq)
        variants, pos, base = mutants(seq)
        for variant, p, b in zip(variants, pos, base, strict=True):
            (keep if bounds(variant) == ref else change).append(abs(effects[row, b, p]))
    n = len(keep) + len(change)
    return (f"- {len(change) / n:.0%} of {n:,} mutants change the BPE segmentation; mean |effect| "
            f"{np.mean(change):.4f} vs {np.mean(keep):.4f} for mutants that keep it "
            f"({np.mean(change) / np.mean(keep):.2f}x)")


def pwm_baseline(data: Path, top: int = 5) -> str:
    """JASPAR motifs whose best scan score best separates tf0 test positives from negatives."""
    test = read_labeled_csv(data / "GUE" / "tf" / "0" / "test.csv")
    scores = []
    for motif in read_jaspar_pfm(data / "motifs" / "JASPAR2022_vertebrates.pfm"):
        best = [scan(s, motif).max() for s in test["sequence"]]
        scores.append((roc_auc_score(test["label"], best), f"{motif.motif_id} {motif.name}"))
    scores.sort(reverse=True)
    return "- best single-PWM AUROC, tf0 test positives vs negatives: " + ", ".join(
        f"{name} {auc:.3f}" for auc, name in scores[:top])


def main() -> None:
    """Print every diagnostic."""
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--data-dir", default=os.environ.get("GENOLM_DATA_DIR", "data"))
    args = parser.parse_args()
    run, data = Path(args.run_dir), Path(args.data_dir)
    ism, attr = np.load(run / "ism.npz"), np.load(run / "attributions.npz")
    contrib = (attr["one_hot"] * attr["ism_hypothetical"]).sum(-1)
    for line in seqlet_counts(contrib):
        print(line)
    tok = load_classifier(data / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0").tokenizer
    print(segmentation(tok, [str(s) for s in ism["sequences"][:200]], ism["effects"]))
    if "ig_per_base" in attr:
        r = [np.corrcoef(a, g)[0, 1] for a, g in zip(contrib, attr["ig_per_base"], strict=True)]
        print(f"- ISM-derived vs IG per-base contributions: median per-sequence Pearson r "
              f"{np.median(r):.3f}; "
              f"IG median |convergence delta| {np.median(np.abs(attr['ig_delta'])):.3f} logits")
    print(pwm_baseline(data))


if __name__ == "__main__":
    main()
