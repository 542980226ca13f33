"""``GenomeChunksDataModule``: genome FASTA -> chunks -> tokens -> causal-LM batches.

Batches are dicts with ``input_ids``, ``labels`` (next-token targets, ``-100`` where ignored),
``bases`` (DNA bases covered by each target token, for bits per base) and, for padded
batches, ``attention_mask``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from genolm.data.corpus import Input, prepare_corpus, weighted_inputs
from genolm.data.once import factory_id, input_stamp, prepare_once
from genolm.data.samplers import check_resume_layout, loader_state, sampler_for
from genolm.data.token_cache import SHARD_MB, TokenSplit, build_token_cache
from genolm.data.tokenizers import bases_per_token, complement_ids
from genolm.errors import GenolmError

log = logging.getLogger(__name__)
IGNORE = -100


class StrandMixin:
    """With a complement table, items ``n .. 2n - 1`` are items ``0 .. n - 1`` on the reverse strand.

    So an epoch shows every sequence once per strand, in the sampler's (shuffled, resumable)
    order; lengths and separators stay where they are.
    """

    n: int
    complement: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n * (2 if self.complement is not None else 1)

    def _strand(self, i: int, ids: np.ndarray) -> torch.Tensor:
        if i >= self.n:
            ids = self.complement[ids[::-1]]
        return torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))


class PackedBlocks(StrandMixin, Dataset):
    """Fixed blocks cut from the separator-joined token stream: no padding at all."""

    def __init__(self, split: TokenSplit, block_size: int, complement: np.ndarray | None = None) -> None:
        self.split, self.block_size, self.complement = split, block_size, complement
        self.n = (split.n_tokens - 1) // block_size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = (i % self.n) * self.block_size
        window = self._strand(i, self.split.read(start, start + self.block_size + 1).astype(np.int64))
        return {"input_ids": window[:-1], "labels": window[1:]}


class PaddedChunks(StrandMixin, Dataset):
    """One chunk per sequence as ``[BOS] tokens [EOS]``, padded per batch by :func:`pad_collate`."""

    def __init__(self, split: TokenSplit, bos_id: int, eos_id: int, complement: np.ndarray | None = None
                 ) -> None:
        self.split, self.bos_id, self.eos_id, self.complement = split, bos_id, eos_id, complement
        self.n = split.n_chunks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        chunk = self._strand(i, self.split.chunk(i % self.n).astype(np.int64))
        ids = torch.cat([torch.tensor([self.bos_id]), chunk, torch.tensor([self.eos_id])])
        return {"input_ids": ids[:-1], "labels": ids[1:]}


class Collator:
    """Stack (or right-pad) samples and attach the bases covered by every target token."""

    def __init__(self, pad_id: int, bases: np.ndarray) -> None:
        self.pad_id = pad_id
        self.bases = torch.from_numpy(bases)

    def __call__(self, samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Collate samples into one batch dict."""
        width = max(len(s["input_ids"]) for s in samples)
        ids = torch.full((len(samples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(samples), width), dtype=torch.long)
        for row, sample in enumerate(samples):
            n = len(sample["input_ids"])
            ids[row, :n], labels[row, :n], mask[row, :n] = sample["input_ids"], sample["labels"], 1
        batch = {"input_ids": ids, "labels": labels,
                 "bases": torch.where(labels == IGNORE, 0, self.bases[labels.clamp(min=0)])}
        if not bool(mask.all()):
            batch["attention_mask"] = mask
        return batch


class GenomeChunksDataModule(L.LightningDataModule):
    """Pretraining data: FASTA/CSV inputs tiled into chunks, tokenized once, served as batches.

    Args:
        inputs: FASTA or CSV files, each a path or ``{path: ..., weight: w}`` to keep its chunks
            with probability ``w`` (see :func:`genolm.data.corpus.prepare_corpus`).
        tokenizer: factory ``(corpus_dir, cache_dir) -> tokenizer`` (a partial from
            ``conf/tokenizer``).
        cache_dir: genolm cache root (corpus, tokenizers and token caches live under it).
        name: corpus name (prefix of its cache folder).
        chunk_len, max_n_frac, val_fraction, seed, val_records: corpus parameters.
        packing: ``True`` packs chunks into ``block_size`` blocks joined by ``[SEP]``;
            ``False`` serves one chunk per sequence, padded to the longest of the batch.
        block_size: tokens per packed sequence.
        batch_size: training micro-batch size (per device).
        eval_batch_size: validation batch size (defaults to ``batch_size``).
        num_workers: DataLoader workers.
        pin_memory: pin host memory when a GPU is present.
        shuffle_seed: seed of the training order (defaults to ``seed``; configs pass the run's
            ``seed``).
        rc_aug: train on both strands: every training block (or chunk) is also served
            reverse-complemented, so an epoch holds twice as many items (single-base tokenizers).
        prepare_workers: processes chunking the inputs (``None``: the usable CPUs, up to 8); the
            corpus is the same for any number.
        shard_mb: largest token-cache file (MiB).

    """

    def __init__(self, inputs: Sequence[Input], tokenizer: Callable[..., PreTrainedTokenizerFast],
                 cache_dir: str, name: str = "corpus", chunk_len: int = 200,
                 max_n_frac: float = 0.0, val_fraction: float = 0.1, seed: int = 42,
                 val_records: Sequence[str] = (), packing: bool = True, block_size: int = 128,
                 batch_size: int = 64, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = True, shuffle_seed: int | None = None, rc_aug: bool = False,
                 prepare_workers: int | None = None, shard_mb: float = SHARD_MB) -> None:
        super().__init__()
        self.inputs, self.tokenizer_factory, self.cache_dir = list(inputs), tokenizer, Path(cache_dir)
        self.corpus_args = {"chunk_len": chunk_len, "max_n_frac": max_n_frac, "name": name,
                            "val_fraction": val_fraction, "seed": seed,
                            "val_records": list(val_records), "workers": prepare_workers}
        self.shard_mb = shard_mb
        self.packing, self.block_size = packing, block_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory and torch.cuda.is_available()
        self.tokenizer: PreTrainedTokenizerFast | None = None
        self.corpus_dir: Path | None = None
        self.token_dir: Path | None = None
        self.datasets: dict[str, Dataset] = {}
        self.shuffle_seed = seed if shuffle_seed is None else shuffle_seed
        self.resume_state: dict[str, int] = {}
        self.rc_aug = rc_aug

    def prepare(self) -> PreTrainedTokenizerFast:
        """Prepare corpus, tokenizer and token cache (each reused when unchanged).

        In a run of several processes started together, global rank 0 prepares and the others
        wait for it, then load its results (:func:`genolm.data.once.prepare_once`).
        """
        if self.tokenizer is None:
            corpus = {k: v for k, v in self.corpus_args.items() if k != "workers"}
            inputs = weighted_inputs(self.inputs)  # checked on every rank: one clear error, no wait
            key = {"inputs": input_stamp(inputs), "corpus": corpus, "shard_mb": self.shard_mb,
                   "tokenizer": factory_id(self.tokenizer_factory), "cache": str(self.cache_dir.resolve())}
            prepare_once(key, self.cache_dir, self._prepare)
        return self.tokenizer

    def _prepare(self) -> None:
        self.corpus_dir = prepare_corpus(self.inputs, self.cache_dir / "corpus", **self.corpus_args)
        self.tokenizer = self.tokenizer_factory(corpus_dir=self.corpus_dir, cache_dir=self.cache_dir)
        self.token_dir = build_token_cache(self.corpus_dir, self.tokenizer, self.cache_dir,
                                           shard_mb=self.shard_mb)

    def prepare_data(self) -> None:
        """Lightning hook: run :meth:`prepare` (idempotent)."""
        self.prepare()

    def check_fits(self, max_positions: int) -> None:
        """Raise if a training sequence would exceed the model's ``max_positions``."""
        tok = self.prepare()
        if self.rc_aug:
            complement_ids(tok)  # fails now, naming the token, for a multi-base tokenizer
        if self.packing:
            if self.block_size > max_positions:
                raise GenolmError(f"data.block_size={self.block_size} exceeds the model's "
                                  f"max_position_embeddings={max_positions}")
            return
        for split in ("train", "val"):
            longest = TokenSplit(self.token_dir, split).meta["splits"][split]["longest_chunk"] + 1
            if longest > max_positions:
                raise GenolmError(
                    f"{self.corpus_dir}/{split}.txt: a chunk tokenizes to {longest} positions "
                    f"(with BOS), more than the model's max_position_embeddings={max_positions}; "
                    "lower data.chunk_len or use data.packing=true")

    def setup(self, stage: str | None = None) -> None:
        """Open the memory-mapped splits."""
        tok = self.prepare()
        for split in ("train", "val"):
            tokens = TokenSplit(self.token_dir, split)
            rc = complement_ids(tok) if self.rc_aug and split == "train" else None
            self.datasets[split] = (PackedBlocks(tokens, self.block_size, rc) if self.packing
                                    else PaddedChunks(tokens, tok.bos_token_id, tok.eos_token_id, rc))
            if len(self.datasets[split]) == 0:
                raise GenolmError(f"{self.corpus_dir}: the {split} split yields no "
                                  f"{'block' if self.packing else 'chunk'} of {self.block_size} tokens")

    def _loader(self, split: str, batch_size: int, train: bool) -> DataLoader:
        collate = Collator(self.tokenizer.pad_token_id, bases_per_token(self.tokenizer))
        dataset = self.datasets[split]
        resume, self.resume_state = (self.resume_state, {}) if train else (None, self.resume_state)
        sampler = sampler_for(dataset, self.trainer, train, self.shuffle_seed, resume)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                          drop_last=train and self.packing, collate_fn=collate,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (:class:`~genolm.data.samplers.ResumableSampler`)."""
        return self._loader("train", self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in order, one unpadded shard per process."""
        return self._loader("val", self.eval_batch_size, train=False)

    def state_dict(self) -> dict[str, int]:
        """Position in the training stream (saved in every checkpoint by Lightning)."""
        return loader_state(self.trainer, self.batch_size, self.shuffle_seed)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Resume the training stream where the checkpoint left it."""
        check_resume_layout(state_dict, self.batch_size, self.trainer)
        self.resume_state = dict(state_dict)

    def summary(self) -> dict[str, Any]:
        """Counts of the prepared data, for logs and reports."""
        self.prepare()
        meta = TokenSplit(self.token_dir, "train").meta
        return {"corpus_dir": str(self.corpus_dir), "token_dir": str(self.token_dir), "packing": self.packing,
                **{f"{s}_{k}": v for s, d in meta["splits"].items() for k, v in d.items()}}
