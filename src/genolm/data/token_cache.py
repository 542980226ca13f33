"""Token cache: a prepared corpus tokenized once into memory-mapped files (nanoGPT style).

Layout of ``<cache_root>/tokens/<corpus_fp>-<tokenizer_fp>/``:

- ``{split}.bin``: every chunk's token ids followed by the separator (``[SEP]``/EOS), as one
  flat ``uint16`` (or ``uint32`` for vocabularies over 65,535) array;
- ``{split}.idx.npy``: ``int64`` offsets of each chunk's first token (length ``n_chunks + 1``);
- ``meta.json``: both fingerprints, dtype, counts, the longest chunk in tokens.

The folder name holds both fingerprints, so a changed corpus or tokenizer gets a new cache and
an unchanged pair reuses the old one.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from genolm.data.corpus import load_corpus_meta
from genolm.data.tokenizers import tokenizer_fingerprint
from genolm.errors import GenolmError
from genolm.io import atomic_dir

log = logging.getLogger(__name__)
SPLITS = ("train", "val")


def _encode_split(text: Path, tok: PreTrainedTokenizerFast, out: Path, dtype: np.dtype,
                  batch: int) -> dict[str, int]:
    """Tokenize one split file into ``out``.bin/.idx.npy; return counts."""
    sep = tok.eos_token_id
    offsets, total, longest, unk = [0], 0, 0, 0
    with open(text) as src, open(out.with_suffix(".bin"), "wb") as dst, \
            tqdm(desc=f"tokenizing {text.stem}", unit=" chunks", disable=None) as bar:
        while lines := [line.rstrip("\n") for line in itertools.islice(src, batch)]:
            encoded = tok.backend_tokenizer.encode_batch(lines, add_special_tokens=False)
            for enc in encoded:
                ids = enc.ids
                longest = max(longest, len(ids))
                unk += ids.count(tok.unk_token_id)
                total += len(ids) + 1
                offsets.append(total)
                dst.write(np.asarray(ids + [sep], dtype=dtype).tobytes())
            bar.update(len(lines))
    np.save(out.with_suffix(".idx.npy"), np.asarray(offsets, dtype=np.int64))
    return {"chunks": len(offsets) - 1, "tokens": total, "longest_chunk": longest, "unk": unk}


def build_token_cache(corpus_dir: str | Path, tok: PreTrainedTokenizerFast,
                      cache_root: str | Path, batch: int = 1024) -> Path:
    """Tokenize a prepared corpus into memory-mapped files, or reuse a matching cache.

    Args:
        corpus_dir: folder written by :func:`genolm.data.corpus.prepare_corpus`.
        tok: the tokenizer; its fingerprint keys the cache.
        cache_root: genolm cache root; files go to ``tokens/<corpus>-<tokenizer>/``.
        batch: chunks tokenized per call.

    Returns:
        The cache folder.

    """
    corpus_fp = load_corpus_meta(corpus_dir)["fingerprint"]
    tok_fp = tokenizer_fingerprint(tok)
    final = Path(cache_root) / "tokens" / f"{corpus_fp[:12]}-{tok_fp[:12]}"
    meta_path = final / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["corpus_fingerprint"] == corpus_fp and meta["tokenizer_fingerprint"] == tok_fp:
            log.info("token cache: reusing %s", final)
            return final
    if tok.eos_token_id is None:
        raise GenolmError("tokenizer has no EOS/[SEP] token to separate chunks")
    dtype = np.dtype(np.uint16 if len(tok) <= 2**16 else np.uint32)
    with atomic_dir(final) as tmp:
        splits = {s: _encode_split(Path(corpus_dir) / f"{s}.txt", tok, tmp / s, dtype, batch)
                  for s in SPLITS}
        meta = {"corpus_fingerprint": corpus_fp, "tokenizer_fingerprint": tok_fp,
                "dtype": dtype.name, "vocab_size": len(tok), "sep_id": tok.eos_token_id,
                "corpus_dir": str(corpus_dir), "splits": splits}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("token cache: wrote %s", final)
    return final


class TokenSplit:
    """Read-only view of one split of a token cache (memory-mapped, opened lazily per process)."""

    def __init__(self, cache_dir: str | Path, split: str) -> None:
        self.cache_dir = Path(cache_dir)
        self.split = split
        self.meta: dict[str, Any] = json.loads((self.cache_dir / "meta.json").read_text())
        self._tokens: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokens": None, "_offsets": None}

    @property
    def tokens(self) -> np.ndarray:
        """The flat token stream (chunks separated by ``[SEP]``)."""
        if self._tokens is None:
            self._tokens = np.memmap(self.cache_dir / f"{self.split}.bin",
                                     dtype=self.meta["dtype"], mode="r")
        return self._tokens

    @property
    def offsets(self) -> np.ndarray:
        """Start offset of each chunk in :attr:`tokens` (plus the end)."""
        if self._offsets is None:
            self._offsets = np.load(self.cache_dir / f"{self.split}.idx.npy", mmap_mode="r")
        return self._offsets

    @property
    def n_chunks(self) -> int:
        """Number of chunks in the split."""
        return int(self.meta["splits"][self.split]["chunks"])

    def chunk(self, i: int) -> np.ndarray:
        """Token ids of chunk ``i`` without its separator."""
        return np.asarray(self.tokens[self.offsets[i] : self.offsets[i + 1] - 1])
