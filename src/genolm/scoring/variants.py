"""Variant inputs: paired ref/alt FASTA files, ``id,ref,alt`` tables, or a VCF plus a genome FASTA.

Every reader returns a DataFrame with ``id``, ``group``, ``ref`` and ``alt`` windows (upper case)
after checking letters, counts and lengths with messages naming the file and record.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import pandas as pd

from genolm.data.sequences import UNREADABLE, check_dna, iter_fasta, read_table, unreadable
from genolm.errors import GenolmError

log = logging.getLogger(__name__)
COLUMNS = ["id", "group", "ref", "alt"]


def _check_pair(rec_id: str, ref: str, alt: str, where: str) -> None:
    check_dna(ref, where, rec_id)
    check_dna(alt, where, rec_id)
    if len(ref) != len(alt):
        raise GenolmError(f"{where}: pair '{rec_id}': ref has {len(ref)} bases, alt {len(alt)} "
                          "(substitutions only; indels go through the VCF path)")


def read_fasta_pairs(ref_path: str | Path, alt_path: str | Path, group: str = "",
                     limit: int | None = None) -> pd.DataFrame:
    """Pair two FASTA files by record order (the course's format)."""
    ref_path, alt_path = Path(ref_path), Path(alt_path)
    for path in (ref_path, alt_path):
        if not path.is_file():
            raise GenolmError(f"{path}: file not found")
    refs, alts = list(iter_fasta(ref_path)), list(iter_fasta(alt_path))
    if len(refs) != len(alts):
        raise GenolmError(f"{ref_path} has {len(refs)} records but {alt_path} has {len(alts)}; "
                          "ref and alt files pair by record order")
    names = [name for name, _ in refs]
    unique = len(set(names)) == len(names)
    rows = []
    for i, ((name, ref), (_, alt)) in enumerate(zip(refs[:limit], alts[:limit], strict=True)):
        rec_id = name if unique else f"{group or ref_path.stem}:{i + 1}"
        _check_pair(rec_id, ref, alt, f"{ref_path} / {alt_path}")
        rows.append((rec_id, group, ref.upper(), alt.upper()))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_table_pairs(path: str | Path, limit: int | None = None) -> pd.DataFrame:
    """Read a CSV/TSV with ``id, ref, alt`` (and optional ``group``) columns."""
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: file not found")
    sep = "\t" if ".tsv" in path.suffixes else ","
    frame = read_table(path, sep=sep, dtype=str, keep_default_na=False, nrows=limit)
    missing = [c for c in ("id", "ref", "alt") if c not in frame.columns]
    if missing:
        raise GenolmError(f"{path}: missing column(s) {missing} (columns found: {list(frame.columns)})")
    if frame.empty:
        raise GenolmError(f"{path}: no rows")
    if "group" not in frame.columns:
        frame["group"] = ""
    for rec_id, ref, alt in zip(frame["id"], frame["ref"], frame["alt"], strict=True):
        _check_pair(rec_id, ref, alt, str(path))
    return frame.assign(ref=frame["ref"].str.upper(), alt=frame["alt"].str.upper())[COLUMNS]


def genome_key(genome: Path, sample: int = 1 << 20) -> str:
    """A key of the genome file's content: size, mtime and a hash of its first and last ``sample`` bytes.

    Two different files (even with the same name) never share a key, and a rewritten file gets
    a new one, so a cached index always belongs to the bytes it indexes.
    """
    stat = genome.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with open(genome, "rb") as handle:
        digest.update(handle.read(sample))
        handle.seek(max(stat.st_size - sample, 0))
        digest.update(handle.read(sample))
    return f"{genome.name}.{digest.hexdigest()[:16]}"


def _open_genome(genome: Path, index_dir: Path):
    import pyfaidx

    if not genome.is_file():
        raise GenolmError(f"{genome}: genome FASTA not found")
    index_dir.mkdir(parents=True, exist_ok=True)
    key = genome_key(genome)
    try:
        return pyfaidx.Fasta(str(genome), indexname=str(index_dir / f"{key}.fai"),
                             gzi_indexname=str(index_dir / f"{key}.gzi"),
                             sequence_always_upper=True, as_raw=True)
    except pyfaidx.UnsupportedCompressionFormat as err:
        raise GenolmError(f"{genome}: gzip-compressed genomes must be BGZF (bgzip) for random "
                          "access, or uncompressed") from err


def read_vcf_windows(vcf: str | Path, genome: str | Path, window: int, index_dir: str | Path,
                     limit: int | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Centred ref/alt windows around the SNVs of a VCF.

    The variant sits at 0-based index ``window // 2``. Indels, REF alleles that do not match the
    genome, unknown chromosomes and windows running off a chromosome are skipped and counted.

    Returns:
        ``(pairs, skipped)`` where ``skipped`` counts each reason.

    """
    vcf = Path(vcf)
    if not vcf.is_file():
        raise GenolmError(f"{vcf}: file not found")
    fasta = _open_genome(Path(genome), Path(index_dir))
    half, rows = window // 2, []
    skipped = {"indel": 0, "ref_mismatch": 0, "off_chromosome": 0, "unknown_chromosome": 0}
    for (chrom, pos, vid, ref_allele, alts) in _vcf_records(vcf):
        for alt_allele in alts.split(","):
            reason = _vcf_skip(fasta, chrom, pos, ref_allele.upper(), alt_allele.upper(), half, window)
            if reason:
                skipped[reason] += 1
                continue
            start = pos - 1 - half
            ref_win = fasta[chrom][start : start + window]
            alt_win = ref_win[:half] + alt_allele.upper() + ref_win[half + 1 :]
            rec_id = vid if vid not in (".", "") else f"{chrom}:{pos}:{ref_allele}>{alt_allele}"
            rows.append((rec_id, "", ref_win, alt_win))
        if limit and len(rows) >= limit:
            break
    if any(skipped.values()):
        log.warning("%s: skipped %s", vcf, skipped)
    if not rows:
        raise GenolmError(f"{vcf}: no scorable SNV left (skipped: {skipped})")
    return pd.DataFrame(rows, columns=COLUMNS), skipped


def _vcf_records(vcf: Path):
    """Yield ``(chrom, pos, id, ref, alts)`` of each VCF data line; one-line errors name the line."""
    line_no = 0
    try:
        with (gzip.open if vcf.suffix == ".gz" else open)(vcf, "rt") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.startswith("#") or not line.strip():
                    continue
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 5:
                    raise GenolmError(f"{vcf}: line {line_no}: expected at least 5 tab-separated columns")
                if not fields[1].isdigit() or int(fields[1]) < 1:
                    raise GenolmError(f"{vcf}: line {line_no}: POS {fields[1]!r} is not a positive integer")
                yield fields[0], int(fields[1]), fields[2], fields[3], fields[4]
    except UNREADABLE as err:
        raise unreadable(vcf, err, f"line {line_no}" if line_no else None) from None


def _vcf_skip(fasta, chrom: str, pos: int, ref: str, alt: str, half: int, window: int) -> str | None:
    """Reason to skip a VCF record, or ``None``."""
    if len(ref) != 1 or len(alt) != 1 or alt not in "ACGT":
        return "indel"
    if chrom not in fasta:
        return "unknown_chromosome"
    start = pos - 1 - half
    if start < 0 or start + window > len(fasta[chrom]):
        return "off_chromosome"
    if fasta[chrom][pos - 1 : pos] != ref:
        return "ref_mismatch"
    return None
