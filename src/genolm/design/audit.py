"""Design audit: whether the edits sit where the oracle's own ISM puts the score, and in TF motifs.

For each start and its final design, :func:`genolm.interpret.ism.saturation_mutagenesis` gives the
``4 x L`` effect map of the oracle's classifier score. A position's importance is the largest
``|effect|`` of any substitution there; the audit asks whether edited positions are more
important than the average position (ratio 1 and percentile 0.5 are what random positions give),
whether each edit falls inside a site of a JASPAR motif the design gained
(:func:`genolm.design.report.motif_changes`), and whether the designs gain more JASPAR motifs than
the same number of random substitutions of the same starts do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from genolm.data.sequences import BASES
from genolm.design.motifs import Motif, hits, sites


def edited_positions(start: str, final: str) -> np.ndarray:
    """0-based positions where ``final`` differs from ``start`` (equal lengths)."""
    return np.flatnonzero(np.frombuffer(start.encode(), np.uint8) != np.frombuffer(final.encode(), np.uint8))


def position_importance(effects: np.ndarray) -> np.ndarray:
    """``(4, L)`` ISM effects -> ``(L,)`` largest absolute effect of any substitution at each position."""
    return np.abs(effects).max(0)


def percentiles(values: np.ndarray) -> np.ndarray:
    """Rank of each value among all of them, scaled to ``(0, 1]`` (ties share their mean rank)."""
    return rankdata(values) / len(values)


def gained_sites(final: str, gained: Sequence[str], motifs: list[Motif], rel_threshold: float
                 ) -> list[tuple[str, int, int]]:
    """``(motif, lo, hi)`` of every site in ``final`` of the ``gained`` motifs (names ``ID.Name``)."""
    wanted = set(gained)
    out = []
    for motif in motifs:
        name = f"{motif.motif_id}.{motif.name}"
        if name in wanted:
            out += [(name, int(lo), int(lo) + len(motif.pwm)) for lo in sites(final, motif, rel_threshold)]
    return out


def random_edits(start: str, k: int, rng: np.random.Generator) -> str:
    """``start`` with ``k`` substitutions at distinct random positions, each to a random other base."""
    seq = list(start)
    for i in rng.choice(len(seq), size=min(k, len(seq)), replace=False):
        seq[i] = rng.choice([b for b in BASES if b != seq[i]])
    return "".join(seq)


Sites = list[list[tuple[str, int, int]]]


def edit_table(ids: Sequence[str], starts: Sequence[str], finals: Sequence[str], start_effects: np.ndarray,
               final_effects: np.ndarray, site_lists: Sites | None) -> pd.DataFrame:
    """One row per edit: its gain on the start, its revert effect, importance percentiles, gained sites.

    ``start_gain`` is the score change of the edit alone on the start, ``revert`` that of undoing it
    in the final design; ``start_pct`` / ``final_pct`` the position's importance percentile in
    either ISM map; ``gained_motifs`` the gained motifs with a site over the position.

    Args:
        ids: design names.
        starts: start sequences.
        finals: final designs.
        start_effects: ``(N, 4, L)`` ISM of the starts.
        final_effects: ``(N, 4, L)`` ISM of the finals.
        site_lists: per design, the gained motif sites (:func:`gained_sites`), or ``None`` without a
            motif file (no ``gained_motifs`` column then).

    """
    rows = []
    for n, (name, start, final) in enumerate(zip(ids, starts, finals, strict=True)):
        length = len(start)
        pct_start = percentiles(position_importance(start_effects[n, :, :length]))
        pct_final = percentiles(position_importance(final_effects[n, :, :length]))
        for i in edited_positions(start, final):
            ref, alt = BASES.index(start[i]), BASES.index(final[i])
            row = {"id": name, "position": int(i), "from": start[i], "to": final[i],
                   "start_gain": float(start_effects[n, alt, i]), "revert": float(final_effects[n, ref, i]),
                   "start_pct": float(pct_start[i]), "final_pct": float(pct_final[i])}
            if site_lists is not None:
                row["gained_motifs"] = ",".join(sorted({m for m, lo, hi in site_lists[n] if lo <= i < hi}))
            rows.append(row)
    return pd.DataFrame(rows)


def design_table(results: pd.DataFrame, start_effects: np.ndarray, final_effects: np.ndarray,
                 edits: pd.DataFrame, site_lists: Sites | None,
                 motifs: list[Motif] | None, rel_threshold: float, seed: int) -> pd.DataFrame:
    """One row per design: importance of the edited positions vs all positions, edits in gained sites.

    Columns: ``id, start_score, final_score, edits``; ``ratio_start`` / ``ratio_final`` (mean
    importance of the edited positions over the mean of all positions, in the start's / final's
    ISM; random positions give 1); ``pct_final`` (their mean importance percentile; random gives
    about 0.5); with motifs, ``gained`` (motifs gained), ``edits_in_gained`` (edits inside a gained
    site), ``site_cover`` (share of positions inside a gained site: what random positions would hit)
    and ``random_gained`` (motifs gained by as many random substitutions of the start).
    """
    rows = []
    for n, row in enumerate(results.itertuples(index=False)):
        length = len(row.start)
        mine = edits[edits["id"] == row.id] if len(edits) else edits
        pos = mine["position"].to_numpy(dtype=int) if len(mine) else np.zeros(0, dtype=int)
        imp_s = position_importance(start_effects[n, :, :length])
        imp_f = position_importance(final_effects[n, :, :length])
        out = {"id": row.id, "start_score": row.start_score, "final_score": row.final_score,
               "edits": len(pos),
               "ratio_start": float(imp_s[pos].mean() / imp_s.mean()) if len(pos) and imp_s.any() else np.nan,
               "ratio_final": float(imp_f[pos].mean() / imp_f.mean()) if len(pos) and imp_f.any() else np.nan,
               "pct_final": float(mine["final_pct"].mean()) if len(pos) else np.nan}
        if site_lists is not None and motifs is not None:
            covered = np.zeros(length, dtype=bool)
            for _, lo, hi in site_lists[n]:
                covered[lo:hi] = True
            control = random_edits(row.start, len(pos), np.random.default_rng([seed, n]))
            before = hits(row.start, motifs, rel_threshold)
            out.update({"gained": len({m for m, _, _ in site_lists[n]}),
                        "edits_in_gained": int((mine["gained_motifs"] != "").sum()) if len(pos) else 0,
                        "site_cover": float(covered.mean()),
                        "random_gained": len(hits(control, motifs, rel_threshold) - before)})
        rows.append(out)
    return pd.DataFrame(rows)


def summarize(designs: pd.DataFrame) -> dict[str, float]:
    """Pooled numbers over all designs (edits weighted equally)."""
    total = int(designs["edits"].sum())
    out = {"designs": len(designs), "edits": total,
           "mean_ratio_start": float(designs["ratio_start"].mean()),
           "mean_ratio_final": float(designs["ratio_final"].mean()),
           "mean_pct_final": float(designs["pct_final"].mean())}
    if "edits_in_gained" in designs:
        in_gained = float(designs["edits_in_gained"].sum() / total) if total else 0.0
        out.update({"share_edits_in_gained": in_gained,
                    "mean_site_cover": float(designs["site_cover"].mean()),
                    "mean_gained": float(designs["gained"].mean()),
                    "mean_random_gained": float(designs["random_gained"].mean())})
    return out
