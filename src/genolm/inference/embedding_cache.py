"""A content-addressed cache of embeddings: one folder per (model, input, layer, pooling).

A folder ``<cache_dir>/<key[:24]>/`` holds ``embeddings.npy``, ``ids.tsv`` and ``meta.json``; the
key is the SHA-256 (:func:`genolm.io.fingerprint`) of

* the model's files (:func:`model_fingerprint`: the name and SHA-256 of every file of the
  ``.ckpt`` or folder; the weights, config and tokenizer, so also the model's maximum length);
* the input (:func:`input_fingerprint`: record names and sequences, in order);
* the layer, the pooling and :data:`CACHE_VERSION` (bumped when the embedding code changes).

Folders are written atomically (:func:`genolm.io.atomic_dir`), so a killed run leaves no partial
entry; an unreadable entry is ignored and rebuilt.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.errors import GenolmError
from genolm.io import (
    atomic_dir,
    atomic_file,
    fingerprint,
    model_source,
    sha256_file,
    sha256_text,
    write_json_atomic,
    write_tsv_atomic,
)

log = logging.getLogger("genolm.embed")
CACHE_VERSION = 1


def model_fingerprint(path: str | Path) -> str:
    """SHA-256 over the relative name and content hash of every file of a ``.ckpt`` or model folder.

    Raises:
        GenolmError: ``path`` is neither a genolm ``.ckpt`` nor a Hugging Face folder.

    """
    path = Path(path)
    model_source(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return fingerprint([(str(p.relative_to(path)) if p != path else p.name, sha256_file(p)) for p in files])


def input_fingerprint(ids: Sequence[str], seqs: Sequence[str]) -> str:
    """SHA-256 of the records in order (names and sequences)."""
    return sha256_text("\n".join(f">{i}\n{s}" for i, s in zip(ids, seqs, strict=True)))


def cache_key(model_fp: str, input_fp: str, layer: int, pooling: str) -> str:
    """The cache key of one embedding request."""
    return fingerprint({"version": CACHE_VERSION, "model": model_fp, "input": input_fp, "layer": layer,
                        "pooling": pooling})


def entry_dir(cache_dir: str | Path, key: str) -> Path:
    """The folder of ``key`` under ``cache_dir``."""
    return Path(cache_dir) / key[:24]


def load_entry(cache_dir: str | Path, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """``(embeddings, meta)`` cached under ``key``, or ``None`` when absent or unreadable."""
    folder = entry_dir(cache_dir, key)
    if not (folder / "meta.json").is_file():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        array = np.load(folder / "embeddings.npy")
    except (OSError, ValueError) as err:
        log.warning("embedding cache %s unreadable (%s): recomputing", folder, err)
        return None
    if meta.get("key") != key or list(array.shape) != meta.get("shape"):
        log.warning("embedding cache %s does not match its meta.json: recomputing", folder)
        return None
    return array, meta


def write_outputs(folder: Path, array: np.ndarray, records: pd.DataFrame, meta: dict[str, Any],
                  prefix: str = "") -> None:
    """Write ``{prefix}embeddings.npy``, ``{prefix}ids.tsv`` and ``{prefix}meta.json``, each atomically."""
    with atomic_file(folder / f"{prefix}embeddings.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    write_tsv_atomic(records, folder / f"{prefix}ids.tsv")
    write_json_atomic(folder / f"{prefix}meta.json", meta)


def save_entry(cache_dir: str | Path, key: str, array: np.ndarray, records: pd.DataFrame,
               meta: dict[str, Any]) -> Path:
    """Store one entry atomically; returns its folder."""
    folder = entry_dir(cache_dir, key)
    try:
        if folder.is_dir():  # an unreadable entry (load_entry refused it): replace it
            shutil.rmtree(folder)
        with atomic_dir(folder) as tmp:
            write_outputs(tmp, array, records, {**meta, "key": key})
    except OSError as err:
        raise GenolmError(f"{cache_dir}: cannot write the embedding cache ({err})") from err
    return folder
