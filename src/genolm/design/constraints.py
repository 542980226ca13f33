"""Design constraints: edit budget, GC range, forbidden motifs, homopolymers, fixed positions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from genolm.data.sequences import gc_fraction
from genolm.errors import GenolmError


@dataclass
class Constraints:
    """What every candidate must satisfy, relative to its start sequence.

    Args:
        max_edits: most substitutions away from the start (``None``: unlimited).
        gc_range: allowed GC share ``(low, high)``.
        forbidden: motifs (ACGT strings) that must not occur, on either strand.
        max_homopolymer: longest allowed run of one base (``None``: unlimited).
        fixed: 0-based positions that must keep the start's base.

    """

    max_edits: int | None = None
    gc_range: tuple[float, float] = (0.0, 1.0)
    forbidden: list[str] = field(default_factory=list)
    max_homopolymer: int | None = None
    fixed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        low, high = self.gc_range
        if not 0 <= low <= high <= 1:
            raise GenolmError(f"constraints: GC range {self.gc_range} is empty or outside [0, 1]")
        if self.max_edits is not None and self.max_edits < 0:
            raise GenolmError("constraints: max_edits must be >= 0")
        self.forbidden = [m.upper() for m in self.forbidden]
        comp = str.maketrans("ACGT", "TGCA")
        self._patterns = set(self.forbidden) | {m.translate(comp)[::-1] for m in self.forbidden}
        run = (self.max_homopolymer or 0) + 1
        self._homopolymer = (re.compile("|".join(f"{b}{{{run},}}" for b in "ACGT"))
                             if self.max_homopolymer else None)

    def violation(self, seq: str, start: str) -> str | None:
        """Why ``seq`` breaks a constraint relative to ``start``, or ``None``."""
        edits = sum(a != b for a, b in zip(seq, start, strict=True))
        if self.max_edits is not None and edits > self.max_edits:
            return f"{edits} edits > max_edits {self.max_edits}"
        gc = gc_fraction(seq)
        if not self.gc_range[0] - 1e-12 <= gc <= self.gc_range[1] + 1e-12:
            return f"GC {gc:.3f} outside {tuple(self.gc_range)}"
        bad = next((m for m in self._patterns if m in seq), None)
        if bad:
            return f"contains forbidden motif {bad}"
        if self._homopolymer is not None and self._homopolymer.search(seq):
            return f"homopolymer longer than {self.max_homopolymer}"
        if any(seq[i] != start[i] for i in self.fixed):
            return "a fixed position changed"
        return None

    def check_start(self, seq: str, name: str) -> None:
        """Raise if a start sequence already breaks a constraint (nothing could be designed)."""
        if any(not 0 <= i < len(seq) for i in self.fixed):
            raise GenolmError(f"start '{name}': fixed positions {self.fixed} outside 0..{len(seq) - 1}")
        if self.max_edits == 0 or len(set(self.fixed)) >= len(seq):
            why = "max_edits is 0" if self.max_edits == 0 else f"all {len(seq)} positions are fixed"
            raise GenolmError(f"start '{name}': nothing can be edited ({why})")
        reason = self.violation(seq, seq)
        if reason:
            raise GenolmError(f"start '{name}' already violates the constraints: {reason}")

    def allows(self, seq: str, start: str) -> bool:
        """``True`` when ``seq`` satisfies every constraint."""
        return self.violation(seq, start) is None
