"""Motif discovery with TF-MoDISco (modisco-lite) and matching against JASPAR with TOMTOM (memelite).

:func:`discover_motifs` runs ``modiscolite.tfmodisco.TFMoDISco`` on one-hot sequences and their
hypothetical contributions (actual = hypothetical x one-hot, as modisco computes it) and returns
each pattern as a :class:`Pattern`, trimmed to the positions holding at least ``trim`` of its
largest per-position contribution (TF-MoDISco's report convention).

:func:`match_motifs` compares each pattern's position probability matrix with every JASPAR PFM
(both strands) with TOMTOM and reports the ``top`` matches with p-values, Benjamini-Hochberg
q-values over all targets of that pattern (as MEME's Tomtom computes them per query) and the
factor names of ``motif2factors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from genolm.data.sequences import BASES
from genolm.design.motifs import read_jaspar_pfm
from genolm.errors import GenolmError

# modisco-lite settings that genolm-interpret and the design audit pass through
MODISCO_KEYS = ("sliding_window_size", "flank_size", "max_seqlets_per_metacluster", "min_metacluster_size",
                 "final_min_cluster_size", "n_leiden_runs")


@dataclass
class Pattern:
    """A discovered motif; matrices are ``(width, 4)`` over A C G T."""

    name: str
    n_seqlets: int
    ppm: np.ndarray
    cwm: np.ndarray
    hypothetical_cwm: np.ndarray
    seqlets: list[tuple[int, int, int, bool]] = field(default_factory=list)

    @property
    def consensus(self) -> str:
        """Most frequent base per position (lower case where it holds < 50%)."""
        return "".join(BASES[b] if p >= 0.5 else BASES[b].lower()
                       for b, p in zip(self.ppm.argmax(1), self.ppm.max(1), strict=True))


@dataclass
class Target:
    """A database motif: JASPAR id, name, factor names and probabilities ``(width, 4)``."""

    motif_id: str
    name: str
    factors: str
    ppm: np.ndarray


def trim_window(cwm: np.ndarray, trim: float = 0.3) -> tuple[int, int]:
    """``[lo, hi)`` spanning the positions whose summed ``|cwm|`` reaches ``trim`` x its maximum."""
    score = np.abs(cwm).sum(1)
    keep = np.flatnonzero(score >= trim * score.max())
    return int(keep.min()), int(keep.max()) + 1


def discover_motifs(onehot: np.ndarray, hypothetical: np.ndarray, trim: float = 0.3,
                    **modisco: object) -> list[Pattern]:
    """Run TF-MoDISco and return its patterns (positive metacluster first), trimmed.

    Args:
        onehot: ``(N, L, 4)`` sequences.
        hypothetical: ``(N, L, 4)`` hypothetical contributions.
        trim: keep positions with at least this share of the largest per-position contribution.
        **modisco: keyword arguments of ``TFMoDISco`` (``sliding_window_size``, ``flank_size``,
            ``max_seqlets_per_metacluster``, ``min_metacluster_size``, ``n_leiden_runs``, ...).

    Returns:
        Patterns named ``pos_<k>`` / ``neg_<k>`` in modisco's order; empty when too few seqlets.

    """
    from modiscolite.tfmodisco import TFMoDISco

    if onehot.shape != hypothetical.shape or onehot.ndim != 3 or onehot.shape[2] != 4:
        raise GenolmError(f"one-hot {onehot.shape} and hypothetical {hypothetical.shape} must both be "
                          "(N, L, 4)")
    window = int(modisco.get("sliding_window_size", 21)) + 2 * int(modisco.get("flank_size", 10))
    if onehot.shape[1] < window:
        raise GenolmError(f"sequences of {onehot.shape[1]} b are shorter than modisco's seqlet window "
                          f"({window} b = sliding_window_size + 2 x flank_size); lower them")
    pos, neg = TFMoDISco(one_hot=np.ascontiguousarray(onehot, dtype=np.float32),
                         hypothetical_contribs=np.ascontiguousarray(hypothetical, dtype=np.float32),
                         **modisco)
    out = []
    for sign, patterns in (("pos", pos), ("neg", neg)):
        for k, pat in enumerate(patterns or []):
            lo, hi = trim_window(pat.contrib_scores, trim)
            seqlets = [(int(s.example_idx), int(s.start), int(s.end), bool(s.is_revcomp))
                       for s in pat.seqlets]
            out.append(Pattern(f"{sign}_{k}", len(pat.seqlets), np.asarray(pat.sequence)[lo:hi],
                               np.asarray(pat.contrib_scores)[lo:hi],
                               np.asarray(pat.hypothetical_contribs)[lo:hi], seqlets))
    return out


def read_factors(path: str | Path) -> dict[str, str]:
    """``motif2factors`` TSV (``Motif Factor ...``) -> ``{"MA0004.1": "Arnt", ...}`` (comma-joined)."""
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: motif2factors file not found")
    table = pd.read_csv(path, sep="\t", dtype=str)
    if not {"Motif", "Factor"} <= set(table.columns):
        raise GenolmError(f"{path}: expected columns Motif and Factor, found {list(table.columns)}")
    names: dict[str, list[str]] = {}
    for motif, factor in zip(table["Motif"], table["Factor"], strict=True):
        key = motif.split("_")[0]
        clean = re.sub(r"^MA\d+\.\d+\.", "", str(factor))  # "MA0006.1.Ahr" -> "Ahr"
        if clean not in names.setdefault(key, []):
            names[key].append(clean)
    return {k: ",".join(v) for k, v in names.items()}


def jaspar_targets(pfm_path: str | Path, factors_path: str | Path | None = None) -> list[Target]:
    """JASPAR PFMs as probability matrices (pseudocount 0.8, as :func:`read_jaspar_pfm`) with factors."""
    factors = read_factors(factors_path) if factors_path else {}
    return [Target(m.motif_id, m.name, factors.get(m.motif_id, m.name), 0.25 * np.exp2(m.pwm))
            for m in read_jaspar_pfm(pfm_path)]


def reverse_complement_matrix(matrix: np.ndarray) -> np.ndarray:
    """Reverse complement of a ``(width, 4)`` A C G T matrix."""
    return np.asarray(matrix)[::-1, ::-1]


def match_motifs(patterns: list[Pattern], targets: list[Target], top: int = 3) -> pd.DataFrame:
    """TOMTOM matches of every pattern's PPM against every target, best first.

    Returns:
        One row per pattern and rank (1..``top``): ``pattern, n_seqlets, consensus, rank,
        motif_id, motif_name, factors, p_value, q_value, strand (+/-), offset, overlap``.

    """
    from memelite import tomtom

    columns = ["pattern", "n_seqlets", "consensus", "rank", "motif_id", "motif_name", "factors",
               "p_value", "q_value", "strand", "offset", "overlap"]
    if not patterns:
        return pd.DataFrame(columns=columns)
    if not targets:
        raise GenolmError("no target motifs to match against")
    p, _, offsets, overlaps, strands = tomtom([pat.ppm.T.astype(np.float64) for pat in patterns],
                                              [t.ppm.T.astype(np.float64) for t in targets], n_jobs=1)
    rows = []
    for i, pat in enumerate(patterns):
        q = false_discovery_control(np.clip(p[i], 0, 1), method="bh")
        for rank, j in enumerate(np.argsort(p[i], kind="stable")[:top], start=1):
            t = targets[j]
            rows.append([pat.name, pat.n_seqlets, pat.consensus, rank, t.motif_id, t.name, t.factors,
                         float(p[i, j]), float(q[j]), "-" if strands[i, j] else "+",
                         int(offsets[i, j]), int(overlaps[i, j])])
    return pd.DataFrame(rows, columns=columns)
