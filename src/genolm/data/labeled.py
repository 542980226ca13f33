"""Labelled DNA sequences: GUE-style ``sequence,label`` CSV splits and positive/negative FASTA pairs.

Every reader returns a DataFrame with columns ``id``, ``sequence`` (upper case) and ``label`` (int),
after validating columns, labels and letters with messages that name the file and record.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.data.sequences import check_dna, iter_fasta, read_table
from genolm.errors import GenolmError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def _validate(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Check letters and labels; upper-case sequences."""
    if frame.empty:
        raise GenolmError(f"{path}: no records")
    for rec_id, seq in zip(frame["id"], frame["sequence"], strict=True):
        if not isinstance(seq, str) or not seq:
            raise GenolmError(f"{path}: record '{rec_id}': empty sequence")
        check_dna(seq, path, rec_id)
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.isna() | (labels != labels.round())
    if bad.any():
        first = frame.loc[bad, ["id", "label"]].iloc[0]
        raise GenolmError(f"{path}: record '{first['id']}': label {first['label']!r} is not an integer")
    if (labels < 0).any():
        raise GenolmError(f"{path}: labels must be >= 0 (class indices)")
    return frame.assign(sequence=frame["sequence"].str.upper(), label=labels.astype(np.int64))


def read_labeled_csv(path: str | Path) -> pd.DataFrame:
    """Read a ``sequence,label`` CSV (GUE layout).

    Record ids are ``<file stem>:<row>`` (1-based) unless the file has an ``id`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: split file not found")
    frame = read_table(path, dtype={"sequence": str}, keep_default_na=False)
    missing = [c for c in ("sequence", "label") if c not in frame.columns]
    if missing:
        raise GenolmError(f"{path}: missing column(s) {missing} (columns found: {list(frame.columns)})")
    if "id" not in frame.columns:
        frame["id"] = [f"{path.stem}:{i + 1}" for i in range(len(frame))]
    return _validate(frame[["id", "sequence", "label"]].copy(), path)


def read_fasta_pair(positive: str | Path, negative: str | Path) -> pd.DataFrame:
    """Read a positive and a negative FASTA file as labels 1 and 0 (ids ``pos:<name>``, ``neg:<name>``)."""
    frames = []
    for path, label in ((Path(positive), 1), (Path(negative), 0)):
        if not path.is_file():
            raise GenolmError(f"{path}: file not found")
        tag = "pos" if label else "neg"
        records = [(f"{tag}:{name}", seq) for name, seq in iter_fasta(path)]
        frame = pd.DataFrame(records, columns=["id", "sequence"]).assign(label=label)
        frames.append(_validate(frame, path))
    return pd.concat(frames, ignore_index=True)


def stratified_split(frame: pd.DataFrame, fractions: dict[str, float], seed: int
                     ) -> dict[str, pd.DataFrame]:
    """Split ``frame`` into named parts with the same class balance, deterministically.

    Args:
        frame: labelled records.
        fractions: e.g. ``{"train": 0.8, "val": 0.1, "test": 0.1}`` (must sum to 1).
        seed: permutation seed (per class).

    """
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise GenolmError(f"split fractions {fractions} do not sum to 1")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in fractions}
    for _, group in frame.groupby("label", sort=True):
        order = group.iloc[rng.permutation(len(group))]
        bounds = np.round(np.cumsum(list(fractions.values())) * len(order)).astype(int)
        for name, lo, hi in zip(fractions, np.r_[0, bounds[:-1]], bounds, strict=True):
            parts[name].append(order.iloc[lo:hi])
    return {name: pd.concat(chunks).sort_index().reset_index(drop=True) for name, chunks in parts.items()}


def check_classes(splits: dict[str, pd.DataFrame], num_labels: int, source: str) -> None:
    """Error when train has one class or labels exceed ``num_labels``; warn for val/test."""
    for name, frame in splits.items():
        top = int(frame["label"].max())
        if top >= num_labels:
            raise GenolmError(f"{source} ({name}): label {top} but the task has {num_labels} classes")
        if frame["label"].nunique() < 2:
            if name == "train":
                raise GenolmError(f"{source} (train): only one class present ({frame['label'].iloc[0]})")
            log.warning("%s (%s): only one class present; AUROC and MCC are undefined", source, name)
