"""Both DNA strands: score a sequence, its reverse complement, or the average of the two.

A transcription-factor site on the minus strand is the same site, so a verdict on a sequence
should not depend on which strand was read. ``strand`` picks what is scored:

- ``forward``: the sequences as given;
- ``reverse``: their reverse complements (at the string level, so any tokenizer works);
- ``average``: both, and the mean of the two results (class probabilities, logits, embedding
  distances or log-likelihood ratios, whatever the scorer returns).

:func:`strand_views` lists the inputs to score, :func:`average_strands` merges one result per
strand, and :func:`on_strands` wraps both around any scoring function of sequence lists. Every
caller (``genolm-eval`` and finetuning's test step, ``genolm-score``, the design oracle) goes
through these three.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import pandas as pd

from genolm.data.sequences import reverse_complement
from genolm.errors import GenolmError

STRANDS = ("forward", "reverse", "average")
V = TypeVar("V")


def check_strand(strand: str) -> None:
    """Raise :class:`GenolmError` unless ``strand`` is one of :data:`STRANDS`."""
    if strand not in STRANDS:
        raise GenolmError(f"strand must be one of {', '.join(STRANDS)}; got {strand!r}")


def strand_views(seqs: Sequence[str], strand: str) -> list[list[str]]:
    """The sequence lists to score: ``[seqs]``, ``[reverse complements]`` or both, in that order."""
    check_strand(strand)
    forward = list(seqs)
    if strand == "forward":
        return [forward]
    reverse = [reverse_complement(s) for s in forward]
    return [reverse] if strand == "reverse" else [forward, reverse]


def average_strands(values: Sequence[V]) -> V:
    """The mean of one result per strand view (a single view is returned as it is).

    Args:
        values: NumPy arrays or torch tensors of one shape, or DataFrames with the same rows;
            a DataFrame's numeric columns are averaged and its other columns (ids, groups)
            kept from the first.

    """
    if not values:
        raise GenolmError("average_strands: no strand results to average")
    first = values[0]
    if len(values) == 1:
        return first
    if isinstance(first, pd.DataFrame):
        numeric = first.select_dtypes("number").columns
        out = first.copy()
        out[numeric] = sum(v[numeric].to_numpy() for v in values) / len(values)
        return out
    return sum(values[1:], first) / len(values)


def on_strands(fn: Callable[..., V], strand: str, *columns: Sequence[str]) -> V:
    """``fn(*columns)`` on the chosen strand(s).

    Args:
        fn: scores aligned lists of sequences (one list per column, e.g. ref and alt windows).
        strand: ``forward``, ``reverse`` or ``average`` (mean of ``fn`` on the sequences and on
            their reverse complements, every column flipped together).
        columns: the sequence lists.

    """
    views = zip(*(strand_views(c, strand) for c in columns), strict=True)
    return average_strands([fn(*view) for view in views])
