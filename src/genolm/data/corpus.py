"""Corpus preparation: FASTA/CSV -> fixed-length upper-case chunks with a train/val split.

The output of :func:`prepare_corpus` is a folder ``<out_root>/<name>-<fingerprint>/`` with
``train.txt`` and ``val.txt`` (one chunk per line) and ``meta.json``. The fingerprint covers the
input files' bytes, their sampling weights and every parameter, so a prepared corpus is reused
until any of them changes.

An input is a path (weight 1) or a mapping ``{path: ..., weight: w}`` with ``0 < w <= 1``: each
chunk of that input is kept with probability ``w``, decided by a seeded hash of the chunk's
identity (record, start), so a smaller genome can be mixed in at a lower rate, deterministically.
Weights above 1 (repeating chunks) are not supported: lower the other inputs' weights instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from genolm.data.pool import ordered_map
from genolm.data.sequences import check_dna, iter_blocks
from genolm.errors import GenolmError
from genolm.io import atomic_dir, fingerprint, remove_stale_temps, sha256_file

log = logging.getLogger(__name__)
CORPUS_FORMAT = 1
#: Bases per block of a record handed to a worker process.
BLOCK_BASES = 1 << 22
#: A corpus input: a path (weight 1) or ``{path: ..., weight: w}``.
Input = str | Path | Mapping[str, Any]


def _is_val(record: str, start: int, seed: int, val_fraction: float) -> bool:
    """Deterministic split of one chunk, stable when other inputs are added or removed."""
    key = f"{seed}:{record}:{start}".encode()
    return (zlib.crc32(key) / 2**32) < val_fraction


def _is_kept(record: str, start: int, seed: int, weight: float) -> bool:
    """Deterministic weighted sampling of one chunk (a hash independent of :func:`_is_val`'s)."""
    if weight >= 1.0:
        return True
    digest = hashlib.blake2b(f"{seed}:{record}:{start}".encode(), digest_size=8, person=b"weight")
    return int.from_bytes(digest.digest(), "big") / 2**64 < weight


def weighted_inputs(inputs: Sequence[Input]) -> list[tuple[Path, float]]:
    """Normalise corpus inputs to ``(path, weight)`` pairs.

    Args:
        inputs: paths (weight 1) or mappings with ``path`` and an optional ``weight``.

    Raises:
        GenolmError: no input, a mapping without ``path`` or with other keys, a weight outside
            ``(0, 1]``, or a missing file.

    """
    if not inputs:
        raise GenolmError("corpus: no input files given")
    pairs = []
    for item in inputs:
        if isinstance(item, Mapping):
            if "path" not in item or set(item) - {"path", "weight"}:
                raise GenolmError(f"corpus: an input is a path or {{path: ..., weight: ...}}, "
                                  f"got {dict(item)}")
            path, weight = Path(item["path"]), item.get("weight")
            weight = 1.0 if weight is None else weight
        else:
            path, weight = Path(item), 1.0
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 < weight <= 1.0:
            raise GenolmError(f"{path}: weight must be in (0, 1], got {weight} (chunks are sampled, "
                              "never repeated: lower the other inputs' weights instead)")
        if not path.is_file():
            raise GenolmError(f"{path}: file not found")
        pairs.append((path, float(weight)))
    return pairs


def chunk_record(seq: str, chunk_len: int, max_n_frac: float) -> tuple[list[tuple[int, str]], int]:
    """Cut one upper-cased record into non-overlapping chunks.

    Args:
        seq: the record's sequence, already upper case.
        chunk_len: chunk length in bases; a shorter tail is dropped.
        max_n_frac: chunks whose share of N exceeds this are dropped.

    Returns:
        ``([(start, chunk), ...], n_dropped_for_n)``.

    """
    kept, dropped = [], 0
    max_n = int(max_n_frac * chunk_len)
    for start in range(0, len(seq) - chunk_len + 1, chunk_len):
        chunk = seq[start : start + chunk_len]
        if chunk.count("N") > max_n:
            dropped += 1
        else:
            kept.append((start, chunk))
    return kept, dropped


def _params(chunk_len: int, max_n_frac: float, val_fraction: float, seed: int,
            val_records: Sequence[str]) -> dict[str, Any]:
    if chunk_len < 1:
        raise GenolmError(f"corpus: chunk_len must be >= 1, got {chunk_len}")
    if not 0.0 <= max_n_frac <= 1.0 or not 0.0 <= val_fraction < 1.0:
        raise GenolmError("corpus: max_n_frac must be in [0, 1] and val_fraction in [0, 1)")
    return {"chunk_len": chunk_len, "max_n_frac": max_n_frac, "val_fraction": val_fraction,
            "seed": seed, "val_records": sorted(val_records), "format": CORPUS_FORMAT}


def _chunk_pieces(job: tuple[int, str, float, dict[str, Any], list[tuple[str, int, str]]]
                  ) -> dict[str, Any]:
    """Chunk, filter and split some blocks of one input (runs in a worker process).

    Args:
        job: ``(input index, path, weight, corpus params, [(record, offset, block), ...])``.

    Returns:
        The train and val text and counts; ``chunks`` counts the chunks that passed the N filter,
        before weighted sampling.

    """
    index, path, weight, params, pieces = job
    seed, held_out = params["seed"], set(params["val_records"])
    train, val = [], []
    done = {"index": index, "chunks": 0, "dropped": 0, "records": 0, "bases": 0}
    for record, offset, block in pieces:
        check_dna(block, path, record, offset)
        kept, dropped = chunk_record(block.upper(), params["chunk_len"], params["max_n_frac"])
        done["chunks"] += len(kept)
        done["dropped"] += dropped
        done["records"] += offset == 0
        done["bases"] += len(block)
        for start, chunk in kept:
            start += offset
            if not _is_kept(record, start, seed, weight):
                continue
            to_val = record in held_out or (
                not held_out and _is_val(record, start, seed, params["val_fraction"]))
            (val if to_val else train).append(chunk)
    return {**done, "train": "".join(c + "\n" for c in train), "n_train": len(train),
            "val": "".join(c + "\n" for c in val), "n_val": len(val)}


def _jobs(inputs: list[tuple[Path, float]], params: dict[str, Any], block_bases: int):
    """Every input as jobs of about ``block_bases`` bases.

    Long records are cut into blocks of whole chunks (a record's tail stays in its last block);
    short records (contigs, table rows) travel several to a job.
    """
    block = max(1, block_bases // params["chunk_len"]) * params["chunk_len"]
    for index, (path, weight) in enumerate(inputs):
        pieces, size = [], 0
        for piece in iter_blocks(path, block):
            pieces.append(piece)
            size += len(piece[2])
            if size >= block:
                yield index, str(path), weight, params, pieces
                pieces, size = [], 0
        if pieces:
            yield index, str(path), weight, params, pieces


def _write_chunks(inputs: list[tuple[Path, float]], params: dict[str, Any], out: Path,
                  workers: int | None, block_bases: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Stream every input into ``out/train.txt`` and ``out/val.txt``; return total and per-input counts.

    The main process reads blocks and writes results in input order; workers chunk, check and
    split them (:func:`_chunk_pieces`), so the files are the same for any number of workers.
    """
    counts = {"train": 0, "val": 0, "dropped_n": 0, "dropped_weight": 0, "records": 0, "bases_read": 0}
    per_input = [{"path": str(p), "weight": w, "chunks": 0, "kept": 0} for p, w in inputs]
    with open(out / "train.txt", "w") as train, open(out / "val.txt", "w") as val, \
            tqdm(desc="chunking", unit="b", unit_scale=True, disable=None) as bar:
        for done in ordered_map(_chunk_pieces, _jobs(inputs, params, block_bases), workers):
            train.write(done["train"])
            val.write(done["val"])
            counts["train"] += done["n_train"]
            counts["val"] += done["n_val"]
            counts["dropped_n"] += done["dropped"]
            counts["records"] += done["records"]
            counts["bases_read"] += done["bases"]
            per_input[done["index"]]["chunks"] += done["chunks"]
            per_input[done["index"]]["kept"] += done["n_train"] + done["n_val"]
            bar.update(done["bases"])
    counts["dropped_weight"] = sum(p["chunks"] - p["kept"] for p in per_input)
    return counts, per_input


def prepare_corpus(inputs: Sequence[Input], out_root: str | Path, chunk_len: int = 200,
                   max_n_frac: float = 0.0, val_fraction: float = 0.1, seed: int = 42,
                   val_records: Sequence[str] = (), name: str = "corpus", workers: int | None = None,
                   block_bases: int = BLOCK_BASES) -> Path:
    """Tile FASTA/CSV inputs into chunks and split them into train and validation sets.

    Args:
        inputs: FASTA (.fa/.fasta, optionally .gz or BGZF) or CSV/TSV files with a ``text`` column,
            each a path or ``{path: ..., weight: w}`` (keep each of its chunks with probability
            ``w`` in ``(0, 1]``, by a seeded hash of the chunk's record and start).
        out_root: folder under which the prepared corpus folder is created.
        chunk_len: chunk length in bases (non-overlapping tiles; record tails are dropped).
        max_n_frac: largest share of N allowed in a kept chunk (0 drops every chunk with an N).
        val_fraction: share of chunks sent to validation, chosen by a hash of
            (seed, record, position) so the split is deterministic.
        seed: split seed.
        val_records: record ids held out whole for validation (replaces the random split).
        name: prefix of the output folder.
        workers: processes that chunk blocks in parallel (``None``: the usable CPUs, up to 8;
            1: this process only). The output does not depend on it.
        block_bases: bases per block handed to a worker (rounded down to whole chunks); memory
            holds about ``2 * workers`` blocks, however long a record is.

    Returns:
        The prepared corpus folder (reused when inputs and parameters are unchanged).

    Raises:
        GenolmError: missing or empty input, a bad weight, invalid letters, or no chunk left.

    """
    weighted = weighted_inputs(inputs)
    paths = [p for p, _ in weighted]
    params = _params(chunk_len, max_n_frac, val_fraction, seed, val_records)
    # a weight enters the fingerprint only when below 1, so unweighted corpora keep their key
    sources = [{"name": p.name, "sha256": sha256_file(p), **({"weight": w} if w < 1.0 else {})}
               for p, w in weighted]
    fp = fingerprint({"params": params, "sources": sources})
    final = Path(out_root) / f"{name}-{fp[:12]}"
    if (final / "meta.json").is_file():
        log.info("corpus: reusing %s", final)
        remove_stale_temps(final)  # left by a preparation killed while another one finished
        return final
    with atomic_dir(final) as tmp:
        counts, per_input = _write_chunks(weighted, params, tmp, workers, block_bases)
        if counts["train"] == 0:
            raise GenolmError(
                f"corpus: no {chunk_len}-base chunk left for training from {[str(p) for p in paths]} "
                f"({counts['dropped_n']} dropped for N > {max_n_frac:.0%}); "
                "lower chunk_len or raise max_n_frac")
        if counts["val"] == 0 and (val_fraction > 0 or val_records):
            raise GenolmError(
                f"corpus: validation split is empty ({counts['train']} train chunks); "
                "raise val_fraction or check val_records")
        meta = {"fingerprint": fp, "params": params, "sources": sources,
                "inputs": [str(p) for p in paths], "counts": counts, "per_input": per_input}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("corpus: %d train / %d val chunks in %s", counts["train"], counts["val"], final)
    return final


def load_corpus_meta(corpus_dir: str | Path) -> dict[str, Any]:
    """Read a prepared corpus's ``meta.json``."""
    path = Path(corpus_dir) / "meta.json"
    if not path.is_file():
        raise GenolmError(f"{corpus_dir}: not a prepared corpus (no meta.json)")
    return json.loads(path.read_text())
