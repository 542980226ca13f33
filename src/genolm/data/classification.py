"""``LabeledSequenceDataModule``: labelled DNA splits -> dynamically padded classifier batches."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from genolm.data.labeled import SPLITS, check_classes, read_fasta_pair, read_labeled_csv, stratified_split
from genolm.data.samplers import check_resume_layout, loader_state, sampler_for
from genolm.errors import GenolmError
from genolm.inference.strands import check_strand, strand_views

log = logging.getLogger(__name__)


class EncodedSplit(Dataset):
    """Token ids and labels of one split (tokenized once, up front), on one strand or both.

    Args:
        ids: token ids of every record on the first strand view (see
            :func:`genolm.inference.strands.strand_views`).
        labels: class of every record.
        rc_ids: token ids of the reverse complements, aligned with ``ids``.
        paired: with ``rc_ids``, every item holds both strands (``input_ids`` and
            ``rc_input_ids``: strand averaging); otherwise items ``n .. 2n - 1`` are the records
            on the reverse strand, for :class:`~genolm.data.samplers.StrandSampler` to draw from.

    """

    def __init__(self, ids: list[list[int]], labels: list[int], rc_ids: list[list[int]] | None = None,
                 paired: bool = False) -> None:
        self.ids, self.labels, self.rc_ids, self.paired = ids, labels, rc_ids, paired

    def __len__(self) -> int:
        return len(self.ids) * (2 if self.rc_ids is not None and not self.paired else 1)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = i % len(self.ids)
        ids = self.rc_ids[row] if i >= len(self.ids) else self.ids[row]
        item = {"input_ids": ids, "label": self.labels[row], "index": row}
        if self.paired and self.rc_ids is not None:
            item["rc_input_ids"] = self.rc_ids[row]
        return item


class PadCollator:
    """Pad to the longest sequence of the batch on the tokenizer's padding side."""

    def __init__(self, pad_id: int, side: str) -> None:
        self.pad_id, self.side = pad_id, side

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, tokens in enumerate(rows):
            n = len(tokens)
            cols = slice(width - n, width) if self.side == "left" else slice(0, n)
            ids[row, cols] = torch.tensor(tokens)
            mask[row, cols] = 1
        return ids, mask

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate into ``input_ids``, ``attention_mask``, ``labels``, ``index`` (+ ``rc_*`` when paired)."""
        ids, mask = self._pad([s["input_ids"] for s in samples])
        batch = {"input_ids": ids, "attention_mask": mask,
                 "labels": torch.tensor([s["label"] for s in samples]),
                 "index": torch.tensor([s["index"] for s in samples])}
        if "rc_input_ids" in samples[0]:
            reverse = self._pad([s["rc_input_ids"] for s in samples])
            batch["rc_input_ids"], batch["rc_attention_mask"] = reverse
        return batch


class LabeledSequenceDataModule(L.LightningDataModule):
    """Classification data from GUE-style CSV splits or a positive/negative FASTA pair.

    Args:
        name: task name (for reports).
        num_labels: number of classes (labels are 0..num_labels-1).
        task_dir: the task's folder (GUE layout); configs derive ``train``/``val``/``test`` from it.
        train, val, test: CSV files with ``sequence,label``; ``val`` may be null, then
            ``val_fraction`` of ``train`` (stratified) becomes validation (GUE EMP tasks).
        positive, negative: FASTA files (labels 1/0) split by ``split_fractions`` instead.
        split_fractions: train/val/test shares for FASTA pairs.
        val_fraction: share of train carved out for validation when ``val`` is null.
        seed: seed of every split and subsample.
        limit_train: keep at most this many training records (stratified sample), for quick runs.
        batch_size, eval_batch_size, num_workers: DataLoader settings.
        on_too_long: ``error`` or ``truncate`` sequences longer than the model's positions.
        rc_aug: train on both strands: every epoch draws each training sequence on a random
            strand (reverse-complemented as a string before tokenization, so any tokenizer
            works; labels unchanged). Validation and test data are never augmented.

    Attributes:
        test_strand: what :meth:`test_dataloader` serves: ``forward``, ``reverse`` or
            ``average`` (both strands in every batch; see :mod:`genolm.inference.strands`).

    """

    def __init__(self, name: str, num_labels: int = 2, task_dir: str | None = None,
                 train: str | None = None,
                 val: str | None = None, test: str | None = None, positive: str | None = None,
                 negative: str | None = None, split_fractions: dict[str, float] | None = None,
                 val_fraction: float = 0.1, seed: int = 42, limit_train: int | None = None,
                 batch_size: int = 128, eval_batch_size: int | None = None, num_workers: int = 0,
                 on_too_long: str = "error", rc_aug: bool = False) -> None:
        super().__init__()
        if on_too_long not in {"error", "truncate"}:
            raise GenolmError(f"data.on_too_long must be 'error' or 'truncate', got {on_too_long!r}")
        self.name, self.num_labels, self.seed, self.task_dir = name, num_labels, seed, task_dir
        self.files = {"train": train, "val": val, "test": test}
        self.pair = (positive, negative)
        self.split_fractions = dict(split_fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
        self.val_fraction, self.limit_train = val_fraction, limit_train
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.on_too_long, self.rc_aug = num_workers, on_too_long, rc_aug
        self.test_strand = "forward"
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, EncodedSplit] = {}
        self.tokenizer: PreTrainedTokenizerFast | None = None
        self.max_length: int | None = None
        self.resume_state: dict[str, int] = {}

    def load(self) -> dict[str, pd.DataFrame]:
        """Read and validate every split (once)."""
        if self.frames:
            return self.frames
        if any(self.pair):
            if not all(self.pair):
                raise GenolmError(f"data '{self.name}': give both positive and negative FASTA files")
            frames = stratified_split(read_fasta_pair(*self.pair), self.split_fractions, self.seed)
            source = f"{self.pair[0]} + {self.pair[1]}"
        else:
            frames, source = self._read_csv_splits(), str(self.files["train"] or self.files["test"])
        if self.limit_train and len(frames["train"]) > self.limit_train:
            share = self.limit_train / len(frames["train"])
            frames["train"] = stratified_split(frames["train"], {"keep": share, "drop": 1 - share},
                                               self.seed)["keep"]
        check_classes(frames, self.num_labels, source)
        self.frames = frames
        return frames

    def _read_csv_splits(self) -> dict[str, pd.DataFrame]:
        if not self.files["train"] and not self.files["test"]:
            raise GenolmError(f"data '{self.name}': no train/test files and no FASTA pair configured")
        frames = {s: read_labeled_csv(p) for s, p in self.files.items() if p}
        if "train" in frames and "val" not in frames:
            parts = stratified_split(frames["train"], {"train": 1 - self.val_fraction,
                                                       "val": self.val_fraction}, self.seed)
            frames.update(parts)
        return frames

    def set_tokenizer(self, tokenizer: PreTrainedTokenizerFast, max_length: int) -> None:
        """Use the checkpoint's tokenizer; sequences may hold at most ``max_length`` tokens."""
        self.tokenizer, self.max_length = tokenizer, max_length

    def _tokenize(self, split: str, seqs: list[str], side: str) -> list[list[int]]:
        """Token ids of one strand view of ``split``; too long: an error or truncation."""
        ids = self.tokenizer(seqs, add_special_tokens=True)["input_ids"]
        too_long = [i for i, x in enumerate(ids) if len(x) > self.max_length]
        where = split if side == "forward" else f"{split}, {side} strand"
        if too_long and self.on_too_long == "error":
            first = self.load()[split]["id"].iloc[too_long[0]]
            raise GenolmError(
                f"data '{self.name}' ({where}): record '{first}' is {len(ids[too_long[0]])} tokens, more "
                f"than the model's {self.max_length} positions ({len(too_long)} such records); "
                "set data.on_too_long=truncate to cut them")
        if too_long:
            log.warning("%s (%s): truncated %d sequences to %d tokens", self.name, where,
                        len(too_long), self.max_length)
            ids = [x[: self.max_length - 1] + [x[-1]] if len(x) > self.max_length else x for x in ids]
        return ids

    def _encode(self, split: str, strand: str = "forward", paired: bool = False) -> EncodedSplit:
        """``split`` on ``strand`` (``average``: both strands, see :class:`EncodedSplit`)."""
        frame = self.load()[split]
        sides = ("reverse",) if strand == "reverse" else ("forward", "reverse")
        views = [self._tokenize(split, seqs, side)
                 for seqs, side in zip(strand_views(frame["sequence"], strand), sides, strict=False)]
        return EncodedSplit(views[0], frame["label"].tolist(), views[1] if len(views) > 1 else None, paired)

    def setup(self, stage: str | None = None) -> None:
        """Tokenize the splits that exist (training on both strands with ``rc_aug``)."""
        if self.tokenizer is None:
            raise GenolmError("LabeledSequenceDataModule.set_tokenizer() must be called before setup")
        for split in SPLITS:
            if split in self.load() and split not in self.datasets:
                both = self.rc_aug and split == "train"
                self.datasets[split] = self._encode(split, "average" if both else "forward")

    def _evaluation_set(self, split: str, strand: str) -> EncodedSplit:
        """Every record of ``split`` once, on ``strand`` (never the training augmentation)."""
        check_strand(strand)
        if strand == "forward":
            base = self.datasets[split]
            return EncodedSplit(base.ids, base.labels)
        key = f"{split}/{strand}"
        if key not in self.datasets:
            self.datasets[key] = self._encode(split, strand, paired=True)
        return self.datasets[key]

    def loader(self, split: str, shuffle: bool = False, strand: str = "forward") -> DataLoader:
        """Batches of ``split``: the resumable shuffled order when ``shuffle``, else in order.

        Under DDP each process gets its share (see :mod:`genolm.data.samplers`).

        Args:
            split: ``train``, ``val`` or ``test``.
            shuffle: training order (on a random strand per sequence with ``rc_aug``).
            strand: in evaluation order, ``forward``, ``reverse`` or ``average`` (batches hold
                ``rc_input_ids`` and ``rc_attention_mask`` too).

        """
        if split not in self.datasets:
            raise GenolmError(f"data '{self.name}': no {split} split configured")
        collate = PadCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        dataset = self.datasets[split] if shuffle else self._evaluation_set(split, strand)
        resume, self.resume_state = (self.resume_state, {}) if shuffle else (None, self.resume_state)
        sampler = sampler_for(dataset, self.trainer, shuffle, self.seed, resume,
                              random_strand=len(dataset) > len(dataset.ids))
        size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(dataset, batch_size=size, sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches on :attr:`test_strand`."""
        return self.loader("test", shuffle=False, strand=self.test_strand)

    def state_dict(self) -> dict[str, int]:
        """Position in the training stream (saved in every checkpoint by Lightning)."""
        return loader_state(self.trainer, self.batch_size, self.seed)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Resume the training stream where the checkpoint left it."""
        check_resume_layout(state_dict, self.batch_size, self.trainer)
        self.resume_state = dict(state_dict)

    def records(self, split: str) -> pd.DataFrame:
        """The validated records of ``split`` (for prediction tables)."""
        return self.load()[split]

    @property
    def source(self) -> str:
        """Where the data came from (for reports)."""
        return str(self.pair if any(self.pair) else self.files)
