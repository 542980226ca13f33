"""Sequence logos (logomaker): per-sequence attributions and discovered motifs beside JASPAR matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genolm.data.sequences import BASES


def file_stem(name: str) -> str:
    """``name`` made safe for a file name (anything but letters, digits, ``-_.`` becomes ``_``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def information_matrix(ppm: np.ndarray, pseudocount: float = 1e-3) -> np.ndarray:
    """Letter heights of an information-content logo: ``p x (2 - H)`` bits per position."""
    p = (np.asarray(ppm, dtype=np.float64) + pseudocount)
    p /= p.sum(1, keepdims=True)
    bits = 2 + (p * np.log2(p)).sum(1, keepdims=True)
    return p * bits


def _logo(ax, matrix: np.ndarray, title: str, ylabel: str, start: int = 0) -> None:
    import logomaker
    from matplotlib.ticker import MaxNLocator

    frame = pd.DataFrame(np.asarray(matrix, dtype=np.float64), columns=list(BASES))
    frame.index = frame.index + start
    logomaker.Logo(frame, ax=ax, color_scheme="classic", baseline_width=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_attributions(tracks: dict[str, np.ndarray], title: str, path: str | Path) -> Path:
    """One logo panel per track of ``(L, 4)`` contributions (e.g. ISM-derived and IG) of a sequence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    length = max(len(t) for t in tracks.values())
    fig, axes = plt.subplots(len(tracks), 1, figsize=(max(6.0, length / 8), 1.9 * len(tracks)),
                             squeeze=False)
    for ax, (name, track) in zip(axes[:, 0], tracks.items(), strict=True):
        _logo(ax, track, f"{title}: {name}", "contribution")
    axes[-1, 0].set_xlabel("position (0-based)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_motif_match(cwm: np.ndarray, ppm: np.ndarray, match_ppm: np.ndarray | None, title: str,
                     match_title: str, reverse: bool, path: str | Path, offset: int = 0) -> Path:
    """Discovered motif (contribution logo and information logo) above its best database match.

    The match is drawn in TOMTOM's alignment: reverse-complemented on the minus strand and shifted
    so that its position ``j + offset`` sits under the pattern's position ``j``.

    Args:
        cwm: the pattern's contribution weight matrix ``(w, 4)``.
        ppm: the pattern's base frequencies ``(w, 4)``.
        match_ppm: the matched database motif ``(w', 4)``, or ``None`` when nothing matched.
        title: title of the pattern panels.
        match_title: title of the match panel.
        reverse: draw the match reverse-complemented (TOMTOM aligned it on the minus strand).
        path: PNG to write.
        offset: TOMTOM's offset of the alignment (match index = pattern index + offset).

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if match_ppm is not None else 2
    lo, hi = (0, len(cwm)) if match_ppm is None else (min(0, -offset), max(len(cwm), len(match_ppm) - offset))
    fig, axes = plt.subplots(panels, 1, figsize=(max(4.0, (hi - lo) / 2.5), 1.8 * panels), sharex=True)
    _logo(axes[0], cwm, f"{title}: contribution (CWM)", "contribution")
    _logo(axes[1], information_matrix(ppm), f"{title}: seqlet frequencies", "bits")
    axes[1].set_ylim(0, 2)
    if match_ppm is not None:
        shown = match_ppm[::-1, ::-1] if reverse else match_ppm
        _logo(axes[2], information_matrix(shown), match_title + (" (reverse complement)" if reverse else ""),
              "bits", start=-offset)
        axes[2].set_ylim(0, 2)
    axes[-1].set_xlim(lo - 0.5, hi - 0.5)
    axes[-1].set_xlabel("position in the pattern")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
