"""Design outputs: FASTA of designs, trajectory plot, motifs gained (JASPAR scan)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from genolm.design.motifs import Motif, hits


def motif_changes(results: pd.DataFrame, motifs: list[Motif], rel_threshold: float = 0.85) -> pd.DataFrame:
    """Per design: motifs found in the final but not the start sequence, and the reverse."""
    rows = []
    for row in results.itertuples(index=False):
        before, after = hits(row.start, motifs, rel_threshold), hits(row.final, motifs, rel_threshold)
        rows.append({"id": row.id, "gained": ";".join(sorted(after - before)),
                     "lost": ";".join(sorted(before - after)), "n_start": len(before), "n_final": len(after)})
    return pd.DataFrame(rows)


def gained_summary(changes: pd.DataFrame, top: int = 10) -> pd.Series:
    """How many designs gained each motif (most frequent first)."""
    gained = changes["gained"].str.split(";").explode()
    return gained[gained != ""].value_counts().head(top)


def plot_trajectory(trajectory: pd.DataFrame, path: str | Path) -> Path:
    """Score vs round, one thin line per start and the mean in bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for _, part in trajectory.groupby("id"):
        ax.plot(part["round"], part["score"], color="tab:blue", alpha=0.25, lw=0.8)
    wide = trajectory.pivot_table(index="round", columns="id", values="score").ffill()
    ax.plot(wide.index, wide.mean(1), color="black", lw=2, label="mean")
    ax.set(xlabel="round", ylabel="oracle score", title="Design trajectories")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
