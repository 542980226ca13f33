"""Group report for variant scores: AUROC with bootstrap CI, Mann-Whitney U, medians, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, rankdata

from genolm.errors import GenolmError


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (rank formula)."""
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_auroc(positive: np.ndarray, negative: np.ndarray, n_boot: int, seed: int
                    ) -> tuple[float, float]:
    """95% percentile interval of the AUROC, resampling each group with replacement."""
    rng = np.random.default_rng(seed)
    values = [auroc(rng.choice(positive, len(positive)), rng.choice(negative, len(negative)))
              for _ in range(n_boot)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def group_report(scores: pd.DataFrame, columns: list[str], positive: str, negative: str,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per score: AUROC of ``positive`` vs ``negative`` (higher score = positive), CI, test, medians.

    An AUROC below 0.5 means the score is larger in the ``negative`` group.
    """
    groups = set(scores["group"])
    if {positive, negative} - groups:
        raise GenolmError(f"groups {positive!r} and {negative!r} needed, found {sorted(groups)}")
    rows = []
    for col in columns:
        pos = scores.loc[scores["group"] == positive, col].to_numpy()
        neg = scores.loc[scores["group"] == negative, col].to_numpy()
        low, high = bootstrap_auroc(pos, neg, n_boot, seed)
        rows.append({"score": col, "auroc": auroc(pos, neg), "ci_low": low, "ci_high": high,
                     "mannwhitney_p": float(mannwhitneyu(pos, neg).pvalue),
                     f"median_{positive}": float(np.median(pos)),
                     f"median_{negative}": float(np.median(neg)), f"n_{positive}": len(pos),
                     f"n_{negative}": len(neg)})
    return pd.DataFrame(rows)


def plot_groups(scores: pd.DataFrame, columns: list[str], path: str | Path) -> Path:
    """Histograms of each score for every group, one panel per score, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
    for ax, col in zip(axes[0], columns, strict=True):
        values = scores[col].to_numpy()
        bins = np.linspace(*np.nanpercentile(values, [0.5, 99.5]), 50)
        for group, part in scores.groupby("group"):
            ax.hist(part[col], bins=bins, alpha=0.55, density=True, label=f"{group} (n={len(part)})")
        ax.set_title(col)
        ax.set_xlabel("score")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_report(table: pd.DataFrame, positive: str, negative: str, header: str) -> str:
    """Markdown summary of :func:`group_report` with a one-line verdict per score."""
    lines = [header, "", f"AUROC = P(score of a {positive} variant > score of a {negative} variant); "
             f"below 0.5 means {negative} variants score higher.", "",
             f"| score | AUROC | 95% CI | Mann-Whitney p | median {positive} | median {negative} |",
             "|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        row = r._asdict()
        lines.append(f"| {row['score']} | {row['auroc']:.3f} | {row['ci_low']:.3f}-{row['ci_high']:.3f} "
                     f"| {row['mannwhitney_p']:.2g} | {row[f'median_{positive}']:.4g} "
                     f"| {row[f'median_{negative}']:.4g} |")
    best = table.iloc[(table["auroc"] - 0.5).abs().argmax()]
    direction = positive if best["auroc"] > 0.5 else negative
    lines += ["", f"Best separating score: `{best['score']}` (AUROC {best['auroc']:.3f}; larger for "
              f"{direction} variants)."]
    return "\n".join(lines) + "\n"
