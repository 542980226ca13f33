"""Corpus preparation in parallel over blocks, and the sharded token cache (tiny inputs)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from helpers import write_fasta

from genolm.data import tokenizers as T
from genolm.data.corpus import prepare_corpus
from genolm.data.pool import ordered_map
from genolm.data.sequences import iter_blocks, iter_records
from genolm.data.token_cache import TokenSplit, build_token_cache
from genolm.errors import GenolmError


def _square(x: int) -> int:
    if x == 13:
        raise GenolmError("thirteen")
    return x * x


def _genome(tmp_path: Path, compress: str | None = None) -> Path:
    rng = random.Random(1)
    seq = lambda n: "".join(rng.choice("ACGTacgtN") for _ in range(n))  # noqa: E731
    records = {"chr1": seq(23_456), "chr2": seq(7), "contig3": seq(1_999), "chrM": seq(10_001)}
    return write_fasta(tmp_path / "genome.fa", records, compress)


@pytest.mark.parametrize("block", [1, 7, 60, 1000, 10**6])
def test_blocks_rebuild_the_records(tmp_path: Path, block: int) -> None:
    fasta = tmp_path / "odd.fa"
    fasta.write_text("text before the first header\n>r1 desc\nACGTAC\nGT\n>r2\n>\nNNACG T\r\nAA\n")
    rebuilt: dict[str, str] = {}
    for name, offset, seq in iter_blocks(fasta, block):
        assert offset == len(rebuilt.get(name, "")) and len(seq) <= block
        rebuilt[name] = rebuilt.get(name, "") + seq
    assert rebuilt == dict(iter_records(fasta)) == {"r1": "ACGTACGT", "r2": "", "record3": "NNACGTAA"}


def test_blocks_of_a_table_are_its_rows(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("text,label\nACGT,1\nGGGGCC,0\n")
    assert list(iter_blocks(table, 2)) == [("row1", 0, "ACGT"), ("row2", 0, "GGGGCC")]


def test_ordered_map_keeps_order_and_raises_the_workers_error() -> None:
    items = [x for x in range(40) if x != 13]
    assert list(ordered_map(_square, items, workers=2, window=3)) == [x * x for x in items]
    with pytest.raises(GenolmError, match="thirteen"):
        list(ordered_map(_square, range(40), workers=2))


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_parallel_corpus_equals_serial(tmp_path: Path, compress: str | None) -> None:
    fasta = _genome(tmp_path, compress)
    args = {"chunk_len": 50, "max_n_frac": 0.1, "val_fraction": 0.2}
    serial = prepare_corpus([fasta], tmp_path / "serial", workers=1, **args)
    parallel = prepare_corpus([fasta], tmp_path / "parallel", workers=2, block_bases=120, **args)
    assert serial.name == parallel.name
    for name in ("train.txt", "val.txt"):
        assert (serial / name).read_bytes() == (parallel / name).read_bytes()
    meta = json.loads((parallel / "meta.json").read_text())
    assert meta == json.loads((serial / "meta.json").read_text())
    assert meta["counts"]["records"] == 4 and meta["counts"]["bases_read"] == 23_456 + 7 + 1_999 + 10_001
    # the chunks are the records' tiles at multiples of chunk_len, none across a block border
    records = dict(iter_records(fasta))
    tiles = {s[i:i + 50].upper() for s in records.values() for i in range(0, len(s) - 49, 50)}
    kept = (parallel / "train.txt").read_text().split() + (parallel / "val.txt").read_text().split()
    assert set(kept) <= tiles and len(kept) + meta["counts"]["dropped_n"] == sum(
        len(s) // 50 for s in records.values())


def test_bad_letter_named_with_its_position_from_a_worker(tmp_path: Path) -> None:
    seq = "ACGT" * 300
    fasta = write_fasta(tmp_path / "bad.fa", {"ok": seq, "chrX": seq[:1001] + "Z" + seq[1002:]})
    with pytest.raises(GenolmError, match=r"record 'chrX': invalid letter 'Z' at position 1002"):
        prepare_corpus([fasta], tmp_path / "out", chunk_len=50, workers=2, block_bases=100)
    assert not any((tmp_path / "out").glob("corpus-*"))


def test_sharded_cache_reads_like_one_file(tmp_path: Path) -> None:
    corpus = prepare_corpus([_genome(tmp_path)], tmp_path / "c", chunk_len=50, max_n_frac=1.0)
    tok = T.char()
    whole = build_token_cache(corpus, tok, tmp_path / "whole")
    # 0.0003 MiB = 157 uint16 tokens: 3 chunks of 51 tokens per file
    sharded = build_token_cache(corpus, tok, tmp_path / "sharded", batch=7, shard_mb=0.0003)
    a, b = TokenSplit(whole, "train"), TokenSplit(sharded, "train")
    assert len(a.shards) == 1 and len(b.shards) == -(-a.n_chunks // 3)
    assert all(sh["tokens"] <= 157 for sh in b.shards)
    assert a.n_tokens == b.n_tokens == sum(sh["tokens"] for sh in b.shards)
    assert np.array_equal(a.read(0, a.n_tokens), b.read(0, b.n_tokens))
    for start, stop in [(0, 1), (100, 260), (150, 160), (a.n_tokens - 5, a.n_tokens), (40, 40)]:
        assert np.array_equal(a.read(start, stop), b.read(start, stop)), (start, stop)
    for i in (0, 2, 3, a.n_chunks - 1):
        assert b.chunk(i).tolist() == tok((corpus / "train.txt").read_text().split()[i],
                                          add_special_tokens=False)["input_ids"]
    with pytest.raises(IndexError):
        b.read(0, b.n_tokens + 1)


def test_a_chunk_longer_than_a_shard_gets_a_file_of_its_own(tmp_path: Path) -> None:
    corpus = prepare_corpus([_genome(tmp_path)], tmp_path / "c", chunk_len=200, max_n_frac=1.0)
    cache = build_token_cache(corpus, T.char(), tmp_path, shard_mb=0.0001)  # 52 tokens < 201
    split = TokenSplit(cache, "val")
    assert [sh["tokens"] for sh in split.shards] == [201] * split.n_chunks
    assert split.chunk(split.n_chunks - 1).shape == (200,)
