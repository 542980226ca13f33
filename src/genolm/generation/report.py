"""Realism report of generated DNA against real held-out DNA and two baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from genolm.generation.realism import (
    MarkovChain,
    NoveltyIndex,
    gc_content,
    iid_sequences,
    jsd,
    kmer_spectrum,
)

KS = range(1, 7)


def real_windows(records: list[str], length: int, n: int, seed: int) -> list[str]:
    """``n`` non-overlapping ``length``-base windows without N, sampled from ``records``."""
    windows = [r[i : i + length].upper() for r in records for i in range(0, len(r) - length + 1, length)]
    windows = [w for w in windows if "N" not in w]
    rng = np.random.default_rng(seed)
    return [windows[i] for i in rng.choice(len(windows), size=min(n, len(windows)), replace=False)]


def baselines(train: list[str], n: int, length: int, order: int, seed: int) -> dict[str, list[str]]:
    """i.i.d. bases at the training GC share and a Markov chain of ``order`` fit on ``train``."""
    gc = float(np.mean(gc_content(train)))
    return {"iid": iid_sequences(n, length, gc, seed),
            f"markov{order}": MarkovChain(order).fit(train).sample(n, length, seed)}


def realism_table(sets: dict[str, list[str]], reference: list[str], novelty: NoveltyIndex | None,
                  min_match: int = 30) -> pd.DataFrame:
    """One row per set: JSD to the reference for k = 1..6, GC KS statistic, novelty."""
    ref_spectra = {k: kmer_spectrum(reference, k) for k in KS}
    ref_gc = gc_content(reference)
    rows = []
    for name, seqs in sets.items():
        row = {"set": name, "n": len(seqs)}
        row.update({f"jsd_k{k}": jsd(kmer_spectrum(seqs, k), ref_spectra[k]) for k in KS})
        row["gc_mean"] = float(np.mean(gc_content(seqs)))
        row["gc_ks"] = float(ks_2samp(gc_content(seqs), ref_gc).statistic)
        if novelty is not None:
            matches = np.array([novelty.longest_match(s) for s in seqs])
            row["longest_match_median"] = float(np.median(matches))
            row[f"share_match_ge{min_match}"] = float((matches >= min_match).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def plot_realism(sets: dict[str, list[str]], table: pd.DataFrame, out_dir: str | Path) -> None:
    """``pca_4mer.png`` (per-sequence 4-mer frequencies, the course's view) and ``jsd_by_k.png``.

    ``jsd_by_k.png`` draws error bars where ``table`` has ``jsd_k{k}_sd`` columns (sd over seeds).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    names = list(sets)
    features = np.vstack([[kmer_spectrum([s], 4) for s in sets[n]] for n in names])
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    labels = np.repeat(names, [len(sets[n]) for n in names])
    fig, ax = plt.subplots(figsize=(6, 5))
    for name in names:
        pts = coords[labels == name]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, label=name)
    ax.set(xlabel="PC1", ylabel="PC2", title="4-mer frequencies per sequence (PCA)")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "pca_4mer.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in table.to_dict(orient="records"):
        sd = [row.get(f"jsd_k{k}_sd", 0.0) for k in KS]  # mean ± sd when the table has sd columns
        ax.errorbar(list(KS), [row[f"jsd_k{k}"] for k in KS], yerr=sd, marker="o", capsize=2,
                    label=row["set"])
    ax.set(xlabel="k", ylabel="JSD to real held-out DNA (bits)", yscale="log", title="k-mer spectrum JSD")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "jsd_by_k.png", dpi=110)
    plt.close(fig)
