"""Token cache: build, reuse, invalidation, and the batches built from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CHR22

from genolm.data import tokenizers as T
from genolm.data.corpus import prepare_corpus
from genolm.data.genome import GenomeChunksDataModule
from genolm.data.token_cache import TokenSplit, build_token_cache


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_corpus([CHR22], tmp_path_factory.mktemp("corpus"), chunk_len=200)


def test_cache_matches_tokenizer_and_is_reused(corpus: Path, tmp_path: Path) -> None:
    tok = T.bpe(corpus, tmp_path, vocab_size=512)
    cache = build_token_cache(corpus, tok, tmp_path)
    val = TokenSplit(cache, "val")
    chunks = (corpus / "val.txt").read_text().split()
    stream = val.read(0, val.n_tokens)
    assert val.n_chunks == len(chunks) and stream.dtype == np.uint16
    assert int((stream == tok.eos_token_id).sum()) == len(chunks)
    for i in (0, 7, len(chunks) - 1):
        assert val.chunk(i).tolist() == tok(chunks[i], add_special_tokens=False)["input_ids"]
    every = [val.chunk(i) for i in range(val.n_chunks)]  # reads across several re-mappings
    assert val.n_chunks > 3 * TokenSplit.REMAP_EVERY
    assert sum(len(x) + 1 for x in every) == val.n_tokens == int(np.load(cache / "val.idx.npy")[-1])
    assert every[-2].tolist() == tok(chunks[-2], add_special_tokens=False)["input_ids"]
    stamp = (cache / "train-00000.bin").stat().st_mtime_ns
    assert build_token_cache(corpus, tok, tmp_path) == cache
    assert (cache / "train-00000.bin").stat().st_mtime_ns == stamp


def test_cache_rebuilt_when_tokenizer_or_corpus_changes(corpus: Path, tmp_path: Path) -> None:
    char_cache = build_token_cache(corpus, T.char(), tmp_path)
    bpe_cache = build_token_cache(corpus, T.bpe(corpus, tmp_path, vocab_size=512), tmp_path)
    assert char_cache != bpe_cache
    other = prepare_corpus([CHR22], tmp_path / "c2", chunk_len=100)
    assert build_token_cache(other, T.char(), tmp_path) not in {char_cache, bpe_cache}
    assert TokenSplit(char_cache, "train").meta["splits"]["train"]["longest_chunk"] == 200


def _module(tmp_path: Path, packing: bool) -> GenomeChunksDataModule:
    dm = GenomeChunksDataModule([str(CHR22)], lambda corpus_dir, cache_dir: T.char(),
                                str(tmp_path), packing=packing, block_size=64, batch_size=8)
    dm.setup("fit")
    return dm


def test_packed_batches_have_no_padding(tmp_path: Path) -> None:
    dm = _module(tmp_path, packing=True)
    for batch in (next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))):
        assert batch["input_ids"].shape == (8, 64) and "attention_mask" not in batch
        assert not (batch["input_ids"] == 3).any()
        assert (batch["input_ids"][:, 1:] == batch["labels"][:, :-1]).all()
    # in order, the first 8 x 64 validation tokens hold chunk 1 (200 bases) and its [SEP]
    assert batch["input_ids"].flatten()[200] == 2 and batch["bases"].sum() == 8 * 64 - 2


def test_padded_batches_cover_every_base(tmp_path: Path) -> None:
    dm = _module(tmp_path, packing=False)
    batch = next(iter(dm.val_dataloader()))
    # [CLS] + 200 bases + [SEP] -> 201 inputs; targets are the 200 bases and [SEP]
    assert batch["input_ids"].shape == (8, 201)
    assert (batch["input_ids"][:, 0] == 1).all() and (batch["labels"][:, -1] == 2).all()
    assert batch["bases"].sum().item() == 8 * 200
