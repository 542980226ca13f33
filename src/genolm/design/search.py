"""``optimize``: run a design algorithm from every start sequence and tabulate the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from genolm.data.sequences import check_dna, gc_fraction
from genolm.design.constraints import Constraints
from genolm.design.oracle import Oracle
from genolm.errors import GenolmError


def search(oracle: Oracle, seqs: Sequence[str], algorithm: Callable[..., list[dict]],
             constraints: Constraints, ids: Sequence[str] | None = None, seed: int = 0,
             progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Design from each start sequence (lengths may differ; each start is optimised alone).

    Args:
        oracle: batched scorer (objective: higher is better).
        seqs: start sequences (ACGT).
        algorithm: e.g. ``partial(greedy, rounds=10)``; called as
            ``algorithm(oracle, start, constraints, rng)``.
        constraints: checked for every candidate; a start that already violates them is an error.
        ids: names of the starts.
        seed: base seed; start ``i`` uses ``default_rng([seed, i])``.
        progress: show a progress bar.

    Returns:
        ``(results, trajectory)``: one row per start (start/final model score, edits, GC, oracle
        calls, final sequence) and one row per start and round.

    """
    if not len(seqs):
        raise GenolmError("optimize: no start sequences")
    ids = list(ids) if ids is not None else [f"seq{i + 1}" for i in range(len(seqs))]
    results, trajectory = [], []
    for i, (name, start) in enumerate(tqdm(list(zip(ids, seqs, strict=True)), desc="designing",
                                           disable=not progress)):
        start = start.upper()
        check_dna(start, "start sequences", name)
        if "N" in start:
            raise GenolmError(f"start '{name}': contains N; designs need ACGT starts")
        constraints.check_start(start, name)
        calls = oracle.calls
        rows = algorithm(oracle, start, constraints, np.random.default_rng([seed, i]))
        for row in rows:
            seq = row["sequence"]
            edits = sum(a != b for a, b in zip(seq, start, strict=True))
            trajectory.append({"id": name, "round": row["round"], "score": oracle.sign * row["score"],
                               "edits": edits, "gc": gc_fraction(seq)})
        final = rows[-1]["sequence"]
        results.append({"id": name, "start_score": oracle.sign * rows[0]["score"],
                        "final_score": oracle.sign * rows[-1]["score"], "rounds": rows[-1]["round"],
                        "edits": trajectory[-1]["edits"], "start_gc": gc_fraction(start),
                        "final_gc": gc_fraction(final),
                        "oracle_calls": oracle.calls - calls, "start": start, "final": final})
    return pd.DataFrame(results), pd.DataFrame(trajectory)
