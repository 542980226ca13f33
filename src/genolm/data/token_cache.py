"""Token cache: a prepared corpus tokenized once into memory-mapped files (nanoGPT style).

Layout of ``<cache_root>/tokens/<corpus_fp>-<tokenizer_fp>/``:

- ``{split}-00000.bin``, ``-00001.bin``, ...: every chunk's token ids followed by the separator
  (``[SEP]``/EOS), as one flat ``uint16`` (or ``uint32`` for vocabularies over 65,535) stream cut
  into shard files of at most ``shard_mb`` MiB, each holding whole chunks;
- ``{split}.idx.npy``: ``int64`` offsets of each chunk's first token in the stream (length
  ``n_chunks + 1``);
- ``meta.json``: both fingerprints, dtype, counts, the longest chunk in tokens, the shard files.

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
#: Default largest token file (MiB).
SHARD_MB = 1024


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


class _ShardWriter:
    """Appends token arrays to ``{stem}-00000.bin``, ``-00001.bin``, ... of at most ``limit`` tokens.

    A chunk never straddles two files (a file holds whole chunks; one chunk longer than the
    limit gets a file of its own).
    """

    def __init__(self, out_dir: Path, stem: str, limit: int) -> None:
        self.out_dir, self.stem, self.limit = out_dir, stem, max(1, limit)
        self.shards: list[dict[str, Any]] = []
        self._file = None

    def _open(self) -> None:
        if self._file is not None:
            self._file.close()
        self.shards.append({"file": f"{self.stem}-{len(self.shards):05d}.bin", "tokens": 0})
        self._file = open(self.out_dir / self.shards[-1]["file"], "wb")

    def write(self, flat: np.ndarray, ends: np.ndarray) -> None:
        """Write ``flat``: whole chunks ending at ``ends`` (increasing positions within ``flat``)."""
        done = 0  # always at a chunk boundary
        while done < len(flat):
            if self._file is None:
                self._open()
            used = self.shards[-1]["tokens"]
            fit = int(np.searchsorted(ends, done + self.limit - used, side="right"))
            cut = int(ends[fit - 1]) if fit > 0 else 0
            if cut <= done:  # the next chunk does not fit
                if used > 0:
                    self._open()
                    continue
                cut = int(ends[np.searchsorted(ends, done, side="right")])  # alone in a new file
            self._file.write(flat[done:cut].tobytes())
            self.shards[-1]["tokens"] += cut - done
            done = cut

    def close(self) -> list[dict[str, Any]]:
        """Close the last file; return the shards' names and token counts."""
        if self._file is None:
            self._open()  # an empty split still has one (empty) file
        self._file.close()
        return self.shards


def _encode_split(text: Path, tok: PreTrainedTokenizerFast, out_dir: Path, dtype: np.dtype,
                  batch: int, shard_tokens: int) -> dict[str, Any]:
    """Tokenize one split file into shards ``out_dir/{split}-*.bin`` and ``{split}.idx.npy``.

    Memory does not grow with the corpus: chunks stream through in batches (tokenized on all
    cores by the tokenizers library), tokens are appended to the shard files and offsets written
    into a memory-mapped .npy sized by a first line count.
    """
    sep, unk, backend = tok.eos_token_id, tok.unk_token_id, uncached_backend(tok)
    n = _count_lines(text)
    offsets = np.lib.format.open_memmap(out_dir / f"{text.stem}.idx.npy", mode="w+", dtype=np.int64,
                                        shape=(n + 1,))
    offsets[0] = done = longest = unks = 0
    writer = _ShardWriter(out_dir, text.stem, shard_tokens)
    with open(text) as src, tqdm(desc=f"tokenizing {text.stem}", total=n, unit=" chunks",
                                 disable=None) as bar:
        while lines := [line.rstrip("\n") for line in itertools.islice(src, batch)]:
            encoded = backend.encode_batch_fast(lines, add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) + 1 for e in encoded), dtype=np.int64, count=len(lines))
            flat = np.fromiter(itertools.chain.from_iterable(e.ids + [sep] for e in encoded),
                               dtype=dtype, count=int(lengths.sum()))
            ends = np.cumsum(lengths)
            offsets[done + 1 : done + 1 + len(lines)] = offsets[done] + ends
            writer.write(flat, ends)
            longest = max(longest, int(lengths.max()) - 1)
            unks += int(np.count_nonzero(flat == unk)) if unk is not None else 0
            done += len(lines)
            bar.update(len(lines))
    total = int(offsets[n])
    offsets.flush()
    del offsets
    return {"chunks": n, "tokens": total, "longest_chunk": longest, "unk": unks,
            "shards": writer.close()}


def build_token_cache(corpus_dir: str | Path, tok: PreTrainedTokenizerFast,
                      cache_root: str | Path, batch: int = 2048, shard_mb: float = SHARD_MB) -> Path:
    """Tokenize a prepared corpus into memory-mapped files, or reuse a matching cache.

    Args:
        corpus_dir: folder written by :func:`genolm.data.corpus.prepare_corpus`.
        tok: the tokenizer; its fingerprint keys the cache.
        cache_root: genolm cache root; files go to ``tokens/<corpus>-<tokenizer>/``.
        batch: chunks tokenized per call (the tokenizers library spreads a call over all cores).
        shard_mb: largest token file, in MiB; a split is cut into as many files as it needs
            (whole chunks each), so no file outgrows what a cluster file system handles well. It
            does not change the tokens, so a cache written with another size is reused.

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
        shard_tokens = int(shard_mb * 2**20) // dtype.itemsize
        splits = {s: _encode_split(Path(corpus_dir) / f"{s}.txt", tok, tmp, dtype, batch, shard_tokens)
                  for s in SPLITS}
        meta = {"corpus_fingerprint": corpus_fp, "tokenizer_fingerprint": tok_fp,
                "dtype": dtype.name, "vocab_size": len(tok), "sep_id": tok.eos_token_id,
                "corpus_dir": str(corpus_dir), "splits": splits}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("token cache: wrote %s", final)
    return final


class TokenSplit:
    """Read-only view of one split of a token cache (memory-mapped shards, opened lazily per process).

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
        info = self.meta["splits"][split]
        # caches written before sharding hold one {split}.bin
        self.shards = info.get("shards") or [{"file": f"{split}.bin", "tokens": info["tokens"]}]
        self._starts = np.cumsum([0] + [sh["tokens"] for sh in self.shards])
        self._maps: list[np.ndarray | None] = [None] * len(self.shards)
        self._offsets: np.ndarray | None = None
        self._reads = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": [None] * len(self.shards), "_offsets": None}

    @property
    def n_tokens(self) -> int:
        """Length of the flat token stream (chunks separated by ``[SEP]``) over all shards."""
        return int(self._starts[-1])

    @property
    def offsets(self) -> np.ndarray:
        """Start offset of each chunk in the token stream (plus the end)."""
        if self._offsets is None:
            self._offsets = np.load(self.cache_dir / f"{self.split}.idx.npy", mmap_mode="r")
        return self._offsets

    @property
    def n_chunks(self) -> int:
        """Number of chunks in the split."""
        return int(self.meta["splits"][self.split]["chunks"])

    def _shard(self, k: int) -> np.ndarray:
        if self._maps[k] is None:
            self._maps[k] = np.memmap(self.cache_dir / self.shards[k]["file"],
                                      dtype=self.meta["dtype"], mode="r")
        return self._maps[k]

    def read(self, start: int, stop: int) -> np.ndarray:
        """A copy of the token stream's ``[start, stop)``, across shard files where it must."""
        self._reads += 1
        if self._reads % self.REMAP_EVERY == 0:
            self._maps = [None] * len(self.shards)  # unmapped once the last view goes
            self._offsets = None
        if not 0 <= start <= stop <= self.n_tokens:
            raise IndexError(f"tokens [{start}, {stop}) outside [0, {self.n_tokens})")
        k = int(np.searchsorted(self._starts, start, side="right")) - 1
        pieces = [np.empty(0, dtype=self.meta["dtype"])]
        while start < stop:
            lo, hi = start - self._starts[k], min(stop, self._starts[k + 1]) - self._starts[k]
            pieces.append(np.array(self._shard(k)[lo:hi]))
            start, k = int(self._starts[k] + hi), k + 1
        return pieces[-1] if len(pieces) <= 2 else np.concatenate(pieces)

    def chunk(self, i: int) -> np.ndarray:
        """Token ids of chunk ``i`` without its separator."""
        start, end = (int(x) for x in self.offsets[i : i + 2])
        return self.read(start, end - 1)
