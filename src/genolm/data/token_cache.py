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
from genolm.data.tokenizers import tokenizer_fingerprint, uncached_backend
from genolm.errors import GenolmError
from genolm.io import atomic_dir, remove_stale_temps

log = logging.getLogger(__name__)
SPLITS = ("train", "val")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def _encode_split(text: Path, tok: PreTrainedTokenizerFast, out: Path, dtype: np.dtype,
                  batch: int) -> dict[str, int]:
    """Tokenize one split file into ``out``.bin/.idx.npy; return counts.

    Memory does not grow with the corpus: chunks stream through in batches, tokens are appended
    to the .bin file and offsets written into a memory-mapped .npy sized by a first line count.
    """
    sep, backend = tok.eos_token_id, uncached_backend(tok)
    n = _count_lines(text)
    offsets = np.lib.format.open_memmap(out.with_suffix(".idx.npy"), mode="w+", dtype=np.int64,
                                        shape=(n + 1,))
    offsets[0] = done = longest = unk = 0
    with open(text) as src, open(out.with_suffix(".bin"), "wb") as dst, \
            tqdm(desc=f"tokenizing {text.stem}", total=n, unit=" chunks", disable=None) as bar:
        while lines := [line.rstrip("\n") for line in itertools.islice(src, batch)]:
            ids = [enc.ids + [sep] for enc in backend.encode_batch(lines, add_special_tokens=False)]
            ends = offsets[done] + np.cumsum([len(x) for x in ids])
            offsets[done + 1 : done + 1 + len(ids)] = ends
            flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype)
            dst.write(flat.tobytes())
            longest = max(longest, max(len(x) for x in ids) - 1)
            unk += sum(x.count(tok.unk_token_id) for x in ids)
            done += len(ids)
            bar.update(len(lines))
    total = int(offsets[n])
    offsets.flush()
    del offsets
    return {"chunks": n, "tokens": total, "longest_chunk": longest, "unk": unk}


def build_token_cache(corpus_dir: str | Path, tok: PreTrainedTokenizerFast,
                      cache_root: str | Path, batch: int = 128) -> Path:
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
            remove_stale_temps(final)  # left by a build killed while another one finished
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
    """Read-only view of one split of a token cache (memory-mapped, opened lazily per process).

    :meth:`read` and :meth:`chunk` re-open the maps every ``REMAP_EVERY`` reads: pages of a map
    stay in the process's resident set until it is unmapped, so without this an epoch would end
    with the whole token file counted in RSS (nanoGPT re-opens its memmap for every batch for the
    same reason).
    """

    REMAP_EVERY = 64

    def __init__(self, cache_dir: str | Path, split: str) -> None:
        self.cache_dir = Path(cache_dir)
        self.split = split
        self.meta: dict[str, Any] = json.loads((self.cache_dir / "meta.json").read_text())
        self._tokens: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._reads = 0

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

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of ``tokens[start:stop]``."""
        self._reads += 1
        if self._reads % self.REMAP_EVERY == 0:
            self._tokens = self._offsets = None  # unmapped once the last view goes
        return np.array(self.tokens[start:stop])

    def chunk(self, i: int) -> np.ndarray:
        """Token ids of chunk ``i`` without its separator."""
        start, end = (int(x) for x in self.offsets[i : i + 2])
        return self.read(start, end - 1)
