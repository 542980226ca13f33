"""Corpus preparation on real chr2 and through the console script (the rest: tests/unit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CHR2, run_cli, write_fasta

from genolm.data.corpus import load_corpus_meta, prepare_corpus


def _lines(corpus: Path, split: str) -> list[str]:
    return (corpus / f"{split}.txt").read_text().split()


def test_real_chr2_chunks(tmp_path: Path) -> None:
    corpus = prepare_corpus([CHR2], tmp_path, chunk_len=200, val_fraction=0.1)
    counts = load_corpus_meta(corpus)["counts"]
    train, val = _lines(corpus, "train"), _lines(corpus, "val")
    # 2,333,275 bases -> 11,666 whole tiles; the leading 10,000 N fill 50 of them
    assert counts["train"] + counts["val"] + counts["dropped_n"] == 2_333_275 // 200
    assert counts["dropped_n"] >= 50
    assert len(train) == counts["train"] and len(val) == counts["val"]
    assert all(len(c) == 200 and set(c) <= set("ACGT") for c in train + val)
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12
    again = prepare_corpus([CHR2], tmp_path / "again", chunk_len=200, val_fraction=0.1)
    assert _lines(again, "val") == val  # deterministic split


@pytest.mark.subprocess
def test_cli_one_line_error_and_success(tmp_path: Path) -> None:
    bad = write_fasta(tmp_path / "bad.fa", {"r1": "ACGT" * 100 + "X"})
    res = run_cli("genolm-prepare-corpus", str(bad), "-o", str(tmp_path / "out"))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"genolm: error: {bad}: record 'r1': invalid letter 'X' at position 401 (1-based); "
        "only A, C, G, T and N (any case) are allowed"]
    good = write_fasta(tmp_path / "good.fa", {"r1": "ACGT" * 1000})
    res = run_cli("genolm-prepare-corpus", str(good), "-o", str(tmp_path / "out"),
                  "--val-fraction", "0.5")
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.splitlines()[0], "meta.json").is_file()
