"""Tokenizers: BPE trained on real chunks, single-base, and the shipped Mistral-DNA tokenizer."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from helpers import CHR22, DATA, MISTRAL_TF0, write_fasta
from tokenizers import Tokenizer

from genolm.data import tokenizers as T
from genolm.data.corpus import prepare_corpus
from genolm.errors import GenolmError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_corpus([CHR22], tmp_path_factory.mktemp("corpus"), chunk_len=200)


def _chunks(corpus: Path, n: int) -> list[str]:
    return (corpus / "val.txt").read_text().split()[:n]


def test_bpe_specials_round_trip_and_reuse(corpus: Path, tmp_path: Path) -> None:
    tok = T.bpe(corpus, tmp_path, vocab_size=512)
    assert [tok.convert_tokens_to_ids(s) for s in T.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 3)
    assert len(tok) == 512
    for chunk in _chunks(corpus, 50):
        ids = tok(chunk)["input_ids"]
        assert ids[0] == 1 and ids[-1] == 2 and tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == chunk
        assert T.bases_per_token(tok)[ids].sum() == len(chunk)
    assert len(tok(_chunks(corpus, 1)[0])["input_ids"]) < 200 / 2  # merges compress DNA
    files = list((tmp_path / "tokenizers").iterdir())
    again = T.bpe(corpus, tmp_path, vocab_size=512)
    assert list((tmp_path / "tokenizers").iterdir()) == files
    assert T.tokenizer_fingerprint(again) == T.tokenizer_fingerprint(tok)
    assert T.tokenizer_fingerprint(T.bpe(corpus, tmp_path, vocab_size=256)) != \
        T.tokenizer_fingerprint(tok)


def test_bpe_trains_on_a_seeded_sample_of_the_whole_corpus(tmp_path: Path) -> None:
    # 100 chunks of "ACAC..." then 100 of "GTGT...": the first 10 chunks hold no G or T
    fasta = write_fasta(tmp_path / "two_halves.fa", {"r": "AC" * 1_000 + "GT" * 1_000})
    corpus = prepare_corpus([fasta], tmp_path / "corpus", chunk_len=20, val_fraction=0.1)
    tok = T.bpe(corpus, tmp_path, vocab_size=16, max_chunks=10, sample_seed=0)
    assert {"ACAC", "GTGT"} <= set(tok.get_vocab())  # merges learnt from both halves
    keys = {p.name for p in (tmp_path / "tokenizers").iterdir()}
    T.bpe(corpus, tmp_path, vocab_size=16, max_chunks=10, sample_seed=0)  # reused
    assert {p.name for p in (tmp_path / "tokenizers").iterdir()} == keys
    T.bpe(corpus, tmp_path, vocab_size=16, max_chunks=10, sample_seed=1)  # another sample
    assert len(list((tmp_path / "tokenizers").iterdir())) == 2


def test_char_tokenizer() -> None:
    tok = T.char()
    assert tok("ACGTN")["input_ids"] == [1, 5, 6, 7, 8, 9, 2]
    assert tok.decode(tok("GATTACA")["input_ids"], skip_special_tokens=True) == "GATTACA"
    assert len(tok) == 10


def test_pretrained_mistral_dna_ids_unchanged() -> None:
    tok = T.pretrained(MISTRAL_TF0)
    raw = Tokenizer.from_file(str(MISTRAL_TF0 / "tokenizer.json"))
    seq = "TTGACCATGGCAGTACGATCGGATCCAATGCATGCAAGTTTAGGCCATATA"
    assert tok(seq)["input_ids"] == raw.encode(seq).ids
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, len(tok)) == (1, 2, 3, 4096)
    assert T.bases_per_token(tok)[tok(seq)["input_ids"]].sum() == len(seq)
    # the course pitfall: lower case and N are unknown to this vocabulary
    assert tok("acgN", add_special_tokens=False)["input_ids"] == [0, 0, 0, 0]
    file_only = T.pretrained(MISTRAL_TF0 / "tokenizer.json")
    assert file_only(seq)["input_ids"] == raw.encode(seq).ids


def test_encode_many_gives_the_ids_of_a_plain_call() -> None:
    windows = [line.strip() for line in gzip.open(DATA / "SNP/SNPexon_ref_201b.fasta.gz", "rt")
               if not line.startswith(">")][:200]
    windows += ["NNNNACGT", "acgt", "A"]
    want = T.pretrained(MISTRAL_TF0)(windows)["input_ids"]
    for tok in (T.pretrained(MISTRAL_TF0), T.char()):
        for specials in (True, False):
            assert T.encode_many(tok, windows, specials) == \
                tok(windows, add_special_tokens=specials)["input_ids"]
    tok = T.pretrained(MISTRAL_TF0)
    tok.backend_tokenizer.enable_truncation(8)  # a backend set to truncate goes through tok itself
    assert [len(x) for x in T.encode_many(tok, windows[:3])] == [len(x) for x in want[:3]]


def test_pretrained_missing(tmp_path: Path) -> None:
    with pytest.raises(GenolmError, match="no tokenizer.json"):
        T.pretrained(tmp_path)
