"""JASPAR position frequency matrices and a small numpy PWM scanner (both strands, log-odds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genolm.data.sequences import encode_dna
from genolm.errors import GenolmError


@dataclass
class Motif:
    """A motif as log-odds weights ``(length, 4)`` over A C G T."""

    motif_id: str
    name: str
    pwm: np.ndarray

    @property
    def max_score(self) -> float:
        """Best achievable score."""
        return float(self.pwm.max(1).sum())

    @property
    def min_score(self) -> float:
        """Worst achievable score."""
        return float(self.pwm.min(1).sum())


def pfm_to_pwm(counts: np.ndarray, pseudocount: float = 0.8, background: float = 0.25) -> np.ndarray:
    """Log2-odds weights from counts: ``log2((n + pc/4) / (N + pc) / background)``."""
    counts = np.asarray(counts, dtype=np.float64)
    probs = (counts + pseudocount / 4) / (counts.sum(1, keepdims=True) + pseudocount)
    return np.log2(probs / background)


def read_jaspar_pfm(path: str | Path) -> list[Motif]:
    """Parse a ``>ID_ID.Name`` + rows of A C G T counts file (``#`` lines are comments)."""
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: motif file not found")
    motifs, header, rows = [], None, []

    def close() -> None:
        if header is not None:
            motif_id, _, rest = header.partition("_")  # ">MA0004.1_MA0004.1.Arnt"
            name = rest[len(motif_id) + 1 :] if rest.startswith(motif_id + ".") else (rest or motif_id)
            motifs.append(Motif(motif_id, name, pfm_to_pwm(np.array(rows))))

    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(">"):
            close()
            header, rows = line[1:].strip(), []
        else:
            values = [float(x) for x in line.split()]
            if len(values) != 4:
                raise GenolmError(f"{path}: motif '{header}': expected 4 counts per row, got {line!r}")
            rows.append(values)
    close()
    if not motifs:
        raise GenolmError(f"{path}: no motifs")
    return motifs


def scan(seq: str, motif: Motif) -> np.ndarray:
    """Best log-odds score per start position over both strands (``len(seq) - w + 1`` values)."""
    codes = encode_dna(seq)
    width = len(motif.pwm)
    if len(codes) < width:
        return np.zeros(0)
    windows = np.lib.stride_tricks.sliding_window_view(codes, width)
    valid = (windows != 255).all(1)
    safe = np.where(windows == 255, 0, windows)
    cols = np.arange(width)
    forward = motif.pwm[cols, safe].sum(1)
    reverse = motif.pwm[::-1][cols, 3 - safe].sum(1)  # complement base on the reversed matrix
    return np.where(valid, np.maximum(forward, reverse), -np.inf)


def sites(seq: str, motif: Motif, rel_threshold: float = 0.85) -> np.ndarray:
    """Start positions of the sites scoring at least ``min + rel_threshold * (max - min)`` (either strand)."""
    cut = motif.min_score + rel_threshold * (motif.max_score - motif.min_score)
    return np.flatnonzero(scan(seq, motif) >= cut)


def hits(seq: str, motifs: list[Motif], rel_threshold: float = 0.85) -> set[str]:
    """Motifs with a site scoring at least ``min + rel_threshold * (max - min)``."""
    return {f"{m.motif_id}.{m.name}" for m in motifs if len(sites(seq, m, rel_threshold))}
