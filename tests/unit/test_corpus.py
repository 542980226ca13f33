"""Corpus preparation on crafted FASTA/CSV files (real chr2 and the console script: tests/integration)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from helpers import write_fasta

from genolm.data.corpus import chunk_record, prepare_corpus
from genolm.errors import GenolmError


def _lines(corpus: Path, split: str) -> list[str]:
    return (corpus / f"{split}.txt").read_text().split()


def test_reuse_and_fingerprint(tmp_path: Path) -> None:
    fa = write_fasta(tmp_path / "a.fa", {"r": "ACGT" * 500})
    first = prepare_corpus([fa], tmp_path / "out", chunk_len=100, val_fraction=0.3)
    stamp = (first / "train.txt").stat().st_mtime_ns
    assert prepare_corpus([fa], tmp_path / "out", chunk_len=100, val_fraction=0.3) == first
    assert (first / "train.txt").stat().st_mtime_ns == stamp
    assert prepare_corpus([fa], tmp_path / "out", chunk_len=50, val_fraction=0.3) != first
    write_fasta(fa, {"r": "ACGA" * 500})
    assert prepare_corpus([fa], tmp_path / "out", chunk_len=100, val_fraction=0.3) != first


def test_soft_mask_n_runs_and_tails() -> None:
    seq = ("acgt" * 25 + "N" * 100 + "ACGTN" * 20 + "AC").upper()
    kept, dropped = chunk_record(seq, 100, 0.0)
    assert [s for s, _ in kept] == [0] and dropped == 2
    assert kept[0][1] == "ACGT" * 25
    kept, dropped = chunk_record(seq, 100, 0.25)  # 20% N chunk kept, 100% N dropped
    assert [s for s, _ in kept] == [0, 200] and dropped == 1


@pytest.mark.parametrize("compress", [None, "gzip", "bgzf"])
def test_plain_gzip_bgzf_agree(tmp_path: Path, compress: str | None) -> None:
    rng = random.Random(0)
    records = {f"chr{i}": "".join(rng.choice("ACGTacgt") for _ in range(5000)) for i in range(3)}
    plain = prepare_corpus([write_fasta(tmp_path / "p.fa", records)], tmp_path / "p",
                           chunk_len=200, val_fraction=0.2)
    other = write_fasta(tmp_path / f"x.fa{'.gz' if compress else ''}", records, compress)
    out = prepare_corpus([other], tmp_path / "x", chunk_len=200, val_fraction=0.2)
    assert _lines(out, "train") == _lines(plain, "train")
    assert _lines(out, "val") == _lines(plain, "val")
    assert all(c.isupper() for c in _lines(out, "train"))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_course_csv_format(tmp_path: Path, suffix: str) -> None:
    rows = ["ACGT" * 50, "acgt" * 50, "TTTT" * 50, "GGCC" * 50] * 5
    path = tmp_path / f"corpus{suffix}"
    text = "text\n" + "\n".join(rows) + "\n"
    if suffix.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    out = prepare_corpus([path], tmp_path / "out", chunk_len=200, val_fraction=0.3)
    assert sorted(_lines(out, "train") + _lines(out, "val")) == sorted(r.upper() for r in rows)


def test_held_out_records(tmp_path: Path) -> None:
    fa = write_fasta(tmp_path / "y.fa", {"I": "ACGT" * 300, "X": "GGCA" * 300})
    out = prepare_corpus([fa], tmp_path / "o", chunk_len=100, val_records=["X"])
    assert set(_lines(out, "val")) == {"GGCA" * 25} and set(_lines(out, "train")) == {"ACGT" * 25}


def _assert_nothing_written(root: Path) -> None:
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("case,records,match", [
    ("letters", {"chrA": "ACGT" * 30 + "R" + "ACGT" * 30},
     r"bad\.fa: record 'chrA': invalid letter 'R' at position 121"),
    ("all_n", {"r": "N" * 1000}, "no 200-base chunk left"),
    ("short", {"r": "ACGT"}, "no 200-base chunk left"),
])
def test_bad_fasta(tmp_path: Path, case: str, records: dict, match: str) -> None:
    fa = write_fasta(tmp_path / "bad.fa", records)
    with pytest.raises(GenolmError, match=match):
        prepare_corpus([fa], tmp_path / "out", chunk_len=200)
    _assert_nothing_written(tmp_path / "out")


def test_empty_missing_and_wrong_columns(tmp_path: Path) -> None:
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(GenolmError, match=r"empty\.fa: no FASTA records"):
        prepare_corpus([tmp_path / "empty.fa"], tmp_path / "out")
    with pytest.raises(GenolmError, match=r"nope\.fa: file not found"):
        prepare_corpus([tmp_path / "nope.fa"], tmp_path / "out")
    (tmp_path / "c.csv").write_text("sequence,label\nACGT,1\n")
    with pytest.raises(GenolmError, match=r"c\.csv: no column 'text'"):
        prepare_corpus([tmp_path / "c.csv"], tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")
