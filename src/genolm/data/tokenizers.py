"""Tokenizer factories: BPE trained on the corpus, a pretrained tokenizer, or single bases.

Each factory has the signature ``(corpus_dir, cache_dir, **params) -> PreTrainedTokenizerFast``
so Hydra configs in ``conf/tokenizer/`` can be swapped freely. Special tokens follow DNABERT-2
(and the Mistral-DNA checkpoints): ``[UNK]=0 [CLS]=1 [SEP]=2 [PAD]=3 [MASK]=4``; ``[CLS]``
doubles as BOS and ``[SEP]`` as EOS and as the separator between packed chunks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from genolm.data.sampling import SAMPLING_METHOD, sample_lines
from genolm.data.sequences import reverse_complement
from genolm.errors import GenolmError
from genolm.io import atomic_dir, fingerprint, sha256_text

log = logging.getLogger(__name__)
SPECIAL_TOKENS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
BASES = ["A", "C", "G", "T", "N"]


def _finish(tok: Tokenizer) -> Tokenizer:
    """Add the whitespace pre-tokenizer, the ``[CLS] ... [SEP]`` template and a fusing decoder."""
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return tok


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers.Tokenizer`` with DNABERT-2 special tokens as a transformers tokenizer."""
    vocab = tok.get_vocab()
    missing = [s for s in SPECIAL_TOKENS if s not in vocab]
    if missing:
        raise GenolmError(f"tokenizer lacks special tokens {missing}; genolm needs {SPECIAL_TOKENS}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]")


def uncached_backend(tok: PreTrainedTokenizerFast) -> Tokenizer:
    """A copy of the tokenizer's backend without a word cache.

    A BPE model caches up to 10,000 encoded "words"; a DNA chunk is one 200-letter word that
    rarely repeats, so the cache never hits but held ~100 MB of native memory once full.
    """
    backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    if hasattr(backend.model, "_resize_cache"):
        backend.model._resize_cache(0)
    return backend


def encode_many(tok: PreTrainedTokenizerFast, seqs: Sequence[str], add_special_tokens: bool = True
                ) -> list[list[int]]:
    """Token ids of many sequences, straight from the Rust backend (same ids as ``tok(seqs)``).

    Skips transformers' per-call wrapping (offsets, masks and type ids turned into Python
    lists): about 1.7x as fast as ``tok(seqs)`` on 201-base windows. A backend configured to
    truncate or pad goes through ``tok`` itself.
    """
    backend = getattr(tok, "backend_tokenizer", None)  # None: a Python tokenizer (EsmTokenizer, ...)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return tok(list(seqs), add_special_tokens=add_special_tokens)["input_ids"]
    return [e.ids for e in backend.encode_batch_fast(list(seqs), add_special_tokens=add_special_tokens)]


def bpe(corpus_dir: str | Path | None, cache_dir: str | Path, vocab_size: int = 4096,
        min_frequency: int = 2, max_chunks: int | None = 200_000, sample_seed: int = 0
        ) -> PreTrainedTokenizerFast:
    """Train (or reuse) a byte-pair-encoding tokenizer on the corpus's training chunks.

    Args:
        corpus_dir: prepared corpus folder (its ``train.txt`` is the training text).
        cache_dir: root of genolm's cache; the tokenizer is stored under ``tokenizers/``.
        vocab_size: final vocabulary size including the 5 special tokens.
        min_frequency: minimum pair count for a merge.
        max_chunks: train on a uniform random sample of this many chunks drawn from the whole
            ``train.txt`` (kept in file order), ``None`` for all of them.
        sample_seed: seed of that sample.

    """
    if corpus_dir is None:
        raise GenolmError("tokenizer=bpe needs a corpus to train on")
    corpus_dir = Path(corpus_dir)
    corpus_fp = json.loads((corpus_dir / "meta.json").read_text())["fingerprint"]
    params = {"vocab_size": vocab_size, "min_frequency": min_frequency, "max_chunks": max_chunks,
              "sampling": SAMPLING_METHOD, "sample_seed": sample_seed}
    final = Path(cache_dir) / "tokenizers" / f"bpe-{fingerprint([corpus_fp, params])[:12]}"
    if not (final / "tokenizer.json").is_file():
        log.info("tokenizer: training BPE (vocab %d) on %s chunks sampled (seed %d) from %s",
                 vocab_size, "all" if max_chunks is None else max_chunks, sample_seed,
                 corpus_dir / "train.txt")
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIAL_TOKENS, initial_alphabet=BASES,
                                      show_progress=True)
        lines = sample_lines(corpus_dir / "train.txt", max_chunks, sample_seed)
        tok.train_from_iterator(lines, trainer=trainer)
        with atomic_dir(final) as tmp:
            _finish(tok).save(str(tmp / "tokenizer.json"))
    return wrap_tokenizer(Tokenizer.from_file(str(final / "tokenizer.json")))


def char(corpus_dir: str | Path | None = None, cache_dir: str | Path | None = None
         ) -> PreTrainedTokenizerFast:
    """Return a single-base tokenizer: specials 0-4, then A=5 C=6 G=7 T=8 N=9."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + BASES)}
    return wrap_tokenizer(_finish(Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))))


def pretrained(path: str | Path, corpus_dir: str | Path | None = None,
               cache_dir: str | Path | None = None) -> PreTrainedTokenizerFast:
    """Load an existing tokenizer (a ``tokenizer.json`` file or a Hugging Face folder), ids unchanged.

    Args:
        path: ``tokenizer.json`` or a folder holding one (e.g. a Mistral-DNA checkpoint).
        corpus_dir: unused (the tokenizer is not retrained).
        cache_dir: unused.

    """
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise GenolmError(f"{path}: no tokenizer.json found")
    if path.is_dir() and (path / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if not isinstance(tok, PreTrainedTokenizerFast):
            raise GenolmError(f"{path}: genolm needs a fast (tokenizers) tokenizer")
        if tok.bos_token is None and tok.cls_token is not None:
            tok.bos_token = tok.cls_token
        if tok.eos_token is None and tok.sep_token is not None:
            tok.eos_token = tok.sep_token
        return tok
    return wrap_tokenizer(Tokenizer.from_file(str(file)))


def tokenizer_fingerprint(tok: PreTrainedTokenizerFast) -> str:
    """SHA-256 of the tokenizer's full serialisation (vocab, merges, template)."""
    return sha256_text(tok.backend_tokenizer.to_str())


def bases_per_token(tok: PreTrainedTokenizerFast) -> np.ndarray:
    """Number of DNA bases each token id spans (0 for special tokens, 1 for ``[UNK]``)."""
    lengths = np.zeros(len(tok), dtype=np.int64)
    specials = set(tok.all_special_ids)
    for token, idx in tok.get_vocab().items():
        if idx in specials:
            lengths[idx] = 1 if idx == tok.unk_token_id else 0
        else:
            lengths[idx] = len(token)
    return lengths


def complement_ids(tok: PreTrainedTokenizerFast) -> np.ndarray:
    """Id -> id of its complementary base (specials map to themselves).

    Used for reverse-complement augmentation at the token level.

    Raises:
        GenolmError: a non-special token is not a single base (BPE, k-mers): the reverse
            complement of a token sequence is then no tokenization of the reverse strand.

    """
    vocab, specials = tok.get_vocab(), set(tok.all_special_ids)
    table = np.arange(len(tok), dtype=np.int64)
    for token, idx in vocab.items():
        if idx in specials:
            continue
        if len(token) != 1 or token not in "ACGTN":
            raise GenolmError(f"data.rc_aug=true needs a single-base tokenizer (tokenizer=char); this "
                              f"one has the token {token!r}: retokenize the reverse strand instead")
        table[idx] = vocab[reverse_complement(token)]
    return table


def tokenizer_state(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Serialise a tokenizer to plain data.

    A fast (``tokenizers``) tokenizer is stored as its JSON (vocab, merges, template) and special
    tokens; any other (a Python tokenizer such as ``EsmTokenizer`` of the Nucleotide Transformer)
    as the text files ``save_pretrained`` writes.
    """
    if not hasattr(tok, "backend_tokenizer"):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            tok.save_pretrained(tmp)
            return {"files": {f.name: f.read_text() for f in sorted(Path(tmp).iterdir()) if f.is_file()}}
    return {"tokenizer_json": tok.backend_tokenizer.to_str(),
            "special_tokens": {k: str(v) for k, v in tok.special_tokens_map.items()
                               if isinstance(v, str)}}


def tokenizer_from_state(state: dict[str, Any]) -> PreTrainedTokenizerBase:
    """Inverse of :func:`tokenizer_state`."""
    if "files" in state:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for name, text in state["files"].items():
                (Path(tmp) / Path(name).name).write_text(text)
            return AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(state["tokenizer_json"]),
                                   **state["special_tokens"])
