"""Read DNA records from FASTA (plain, gzip, BGZF) or CSV files, with validation."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from Bio.SeqIO.FastaIO import SimpleFastaParser

from genolm.errors import GenolmError

FASTA_SUFFIXES = {".fa", ".fasta", ".fna", ".fas"}
TABLE_SUFFIXES = {".csv", ".tsv"}
_INVALID = re.compile(r"[^ACGTNacgtn]")


def _base_suffix(path: Path) -> str:
    """Return the format suffix of ``path`` ignoring a trailing .gz/.bgz."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bgz"}:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path):
    """Open a plain or gzip/BGZF-compressed file as text (BGZF is multi-member gzip)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return open(path)


def check_dna(seq: str, path: str | Path, record: str, offset: int = 0) -> None:
    """Raise :class:`GenolmError` if ``seq`` holds a letter other than A, C, G, T or N.

    Args:
        seq: the sequence (any case).
        path: file the sequence came from, for the message.
        record: record name or row, for the message.
        offset: 0-based position of ``seq[0]`` within the record.

    """
    bad = _INVALID.search(seq)
    if bad is not None:
        pos = offset + bad.start()
        raise GenolmError(
            f"{path}: record '{record}': invalid letter {bad.group()!r} at position {pos + 1} "
            "(1-based); only A, C, G, T and N (any case) are allowed"
        )


_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def reverse_complement(seq: str) -> str:
    """Reverse complement of A/C/G/T/N in either case (N stays N, case is kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


# what a truncated .gz, a binary file or a corrupt stream raises while it is read as text
UNREADABLE = (EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error, OSError)


def unreadable(path: Path, err: BaseException, after: str | None) -> GenolmError:
    """One-line error for a file that cannot be read as text, naming the last good record."""
    where = f" after record '{after}'" if after else " before the first record"
    kind = {EOFError: "truncated (compressed stream ends early)",
            UnicodeDecodeError: "not text (binary data)"}.get(type(err), f"unreadable ({err})")
    return GenolmError(f"{path}: {kind}{where}; is it a complete FASTA/CSV file?")


def record_id(title: str, n: int) -> str:
    """A FASTA record's id: the first word of its header, or ``record<n>`` for an empty one."""
    return title.split()[0] if title.strip() else f"record{n}"


def iter_fasta(path: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(record_id, sequence)`` from a FASTA file (Biopython's parser).

    Raises:
        GenolmError: the file holds no record, or is truncated, binary or corrupt.

    """
    n, name = 0, None
    try:
        with _open_text(path) as handle:
            for title, seq in SimpleFastaParser(handle):
                n += 1
                name = record_id(title, n)
                yield name, seq
    except UNREADABLE as err:
        raise unreadable(path, err, name) from None
    if n == 0:
        raise GenolmError(f"{path}: no FASTA records found (empty file or not FASTA)")


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with a one-line :class:`GenolmError` for an empty, binary or malformed file."""
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise GenolmError(f"{path}: empty file, expected a header row") from None
    except pd.errors.ParserError as err:
        raise GenolmError(f"{path}: not a well-formed table ({str(err).strip().splitlines()[-1]})") from None
    except UNREADABLE as err:
        raise unreadable(Path(path), err, None) from None


def iter_table(path: Path, column: str = "text", chunksize: int = 50_000) -> Iterator[tuple[str, str]]:
    """Yield ``(row_name, sequence)`` from a CSV/TSV with a sequence column (the course format)."""
    sep = "\t" if _base_suffix(path) == ".tsv" else ","
    header = read_table(path, sep=sep, nrows=0).columns.tolist()
    if column not in header:
        raise GenolmError(f"{path}: no column '{column}' (columns found: {header})")
    n = 0
    try:
        for frame in pd.read_csv(path, sep=sep, usecols=[column], dtype=str, chunksize=chunksize,
                                 keep_default_na=False):
            for seq in frame[column]:
                n += 1
                yield f"row{n}", seq
    except pd.errors.ParserError as err:
        raise GenolmError(f"{path}: not a well-formed table after row {n} ({err})") from None
    except UNREADABLE as err:
        raise unreadable(path, err, f"row{n}" if n else None) from None
    if n == 0:
        raise GenolmError(f"{path}: table has a '{column}' column but no rows")


def iter_records(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield ``(record_id, sequence)`` from a FASTA or CSV/TSV file, chosen by suffix.

    Raises:
        GenolmError: the file is missing, empty or lacks the ``text`` column.

    """
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: file not found")
    if _base_suffix(path) in TABLE_SUFFIXES:
        yield from iter_table(path)
    else:
        yield from iter_fasta(path)


def _fasta_blocks(path: Path, block: int) -> Iterator[tuple[str, int, str]]:
    """Blocks of every FASTA record, streamed line by line (see :func:`iter_blocks`)."""
    n, name, parts, size, offset = 0, None, [], 0, 0
    with _open_text(path) as handle:
        for line in handle:
            if line.startswith(">"):
                if name is not None:
                    yield name, offset, "".join(parts)
                n += 1
                name, parts, size, offset = record_id(line[1:], n), [], 0, 0
                continue
            if name is None:
                continue  # text before the first header is skipped, as Biopython's parser does
            line = line.rstrip().replace(" ", "").replace("\r", "")
            parts.append(line)
            size += len(line)
            if size >= block:
                joined, start = "".join(parts), 0
                while size - start >= block:
                    yield name, offset, joined[start : start + block]
                    start, offset = start + block, offset + block
                parts, size = [joined[start:]], size - start
    if name is not None:
        yield name, offset, "".join(parts)
    if n == 0:
        raise GenolmError(f"{path}: no FASTA records found (empty file or not FASTA)")


def iter_blocks(path: str | Path, block: int) -> Iterator[tuple[str, int, str]]:
    """Yield ``(record_id, offset, block)``: every record cut into consecutive blocks of ``block`` letters.

    Memory stays bounded by ``block`` however long a record is (a chromosome): FASTA is read line
    by line rather than with Biopython's parser, which returns whole records. Every record yields
    at least one block (the last one shorter, possibly empty); rows of a CSV/TSV file are one block
    each. Record ids, offsets and letters are those of :func:`iter_records`.

    Raises:
        GenolmError: the file is missing, empty, truncated or binary, or a table lacks ``text``.

    """
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: file not found")
    if block < 1:
        raise GenolmError(f"block size must be >= 1, got {block}")
    if _base_suffix(path) in TABLE_SUFFIXES:
        yield from ((name, 0, seq) for name, seq in iter_table(path))
        return
    name = None
    try:
        for name, offset, seq in _fasta_blocks(path, block):
            yield name, offset, seq
    except UNREADABLE as err:
        raise unreadable(path, err, name) from None


BASES = "ACGT"
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i


def encode_dna(seq: str) -> np.ndarray:
    """Bases as codes 0-3 (A C G T); anything else becomes 255."""
    return _CODE[np.frombuffer(seq.upper().encode(), dtype=np.uint8)]


def gc_fraction(seq: str) -> float:
    """GC share of one sequence (0 for an empty one)."""
    return (seq.count("G") + seq.count("C")) / max(1, len(seq))


_PAD = "-"  # fills short rows; like every letter but A/C/G/T it is never a base


def one_hot(seqs: Sequence[str], length: int | None = None, unknown: float = 0.0) -> np.ndarray:
    """One-hot DNA as ``(N, L, 4)`` float32 (channels A, C, G, T), any case.

    Args:
        seqs: DNA sequences.
        length: width (default: the longest sequence); shorter sequences get all-zero rows at the
            end, longer ones are cut.
        unknown: the value of every channel at N or any other letter (0: nothing; 0.25: uniform).

    """
    width = max(len(s) for s in seqs) if length is None else length
    lookup = np.full((256, 4), unknown, dtype=np.float32)
    for i, base in enumerate(BASES):
        lookup[[ord(base), ord(base.lower())]] = np.eye(4, dtype=np.float32)[i]
    lookup[ord(_PAD)] = 0.0
    text = "".join(s[:width].ljust(width, _PAD) for s in seqs).encode("ascii", errors="replace")
    return lookup[np.frombuffer(text, dtype=np.uint8).reshape(len(seqs), width)]
