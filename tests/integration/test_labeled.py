"""Labelled data: GUE CSV splits, FASTA pairs, validation errors, the DataModule's batches."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from helpers import DATA, MISTRAL_TF0

from genolm.data.classification import LabeledSequenceDataModule
from genolm.data.labeled import read_fasta_pair, read_labeled_csv, stratified_split
from genolm.data.tokenizers import char, pretrained
from genolm.errors import GenolmError

TF0 = DATA / "GUE" / "tf" / "0"
DNASE = DATA / "hg19_GM12878_201b"


def test_gue_tf0_reads() -> None:
    frame = read_labeled_csv(TF0 / "train.csv")
    assert len(frame) == 32378 and set(frame["label"]) == {0, 1}
    assert frame["sequence"].str.len().eq(101).all()
    assert frame["id"].iloc[0] == "train:1"


def test_fasta_pair_split_deterministic_and_stratified() -> None:
    frame = read_fasta_pair(DNASE / "DNase_GM12878_hg19_4000_pos.fa.gz",
                            DNASE / "DNase_GM12878_hg19_4000_neg.fa.gz")
    assert (frame["label"] == 1).sum() == 4000 and (frame["label"] == 0).sum() == 3751
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    first, again = stratified_split(frame, fractions, 7), stratified_split(frame, fractions, 7)
    for name in fractions:
        pd.testing.assert_frame_equal(first[name], again[name])
        share = first[name]["label"].mean()
        assert abs(share - 4000 / 7751) < 0.002, (name, share)
    ids = [set(first[n]["id"]) for n in fractions]
    assert sum(map(len, ids)) == len(frame) == len(set.union(*ids))
    assert stratified_split(frame, fractions, 8)["test"]["id"].tolist() != first["test"]["id"].tolist()


@pytest.mark.parametrize("text,match", [
    ("sequence,lab\nACGT,1\n", r"missing column\(s\) \['label'\]"),
    ("sequence,label\nACGT,1\nACGT,x\n", r"record 'bad:2': label 'x' is not an integer"),
    ("sequence,label\nACGT,1\nACXT,0\n", r"record 'bad:2': invalid letter 'X' at position 3"),
    ("sequence,label\n", "no records"),
])
def test_bad_csv(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(GenolmError, match=match):
        read_labeled_csv(tmp_path / "bad.csv")


def test_missing_split_and_single_class(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dm = LabeledSequenceDataModule("t", train=str(tmp_path / "train.csv"), test=str(TF0 / "test.csv"))
    with pytest.raises(GenolmError, match=r"train\.csv: split file not found"):
        dm.load()
    (tmp_path / "train.csv").write_text("sequence,label\n" + "ACGT,1\n" * 20)
    with pytest.raises(GenolmError, match=r"\(train\): only one class"):
        LabeledSequenceDataModule("t", train=str(tmp_path / "train.csv")).load()
    (tmp_path / "ok.csv").write_text("sequence,label\n" + "ACGT,1\nTTTT,0\n" * 10)
    with caplog.at_level(logging.WARNING):
        LabeledSequenceDataModule("t", train=str(tmp_path / "ok.csv"),
                                  test=str(tmp_path / "train.csv")).load()
    assert "only one class present" in caplog.text


def test_too_long_error_or_truncate(caplog: pytest.LogCaptureFixture) -> None:
    dm = LabeledSequenceDataModule("tf0", train=str(TF0 / "dev.csv"), test=str(TF0 / "test.csv"))
    dm.set_tokenizer(char(), 64)
    with pytest.raises(GenolmError, match=r"record 'dev:\d+' is 103 tokens, more than the model's 64"):
        dm.setup("fit")
    dm = LabeledSequenceDataModule("tf0", train=str(TF0 / "dev.csv"), on_too_long="truncate")
    dm.set_tokenizer(char(), 64)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "truncated" in caplog.text
    assert max(len(x) for x in dm.datasets["train"].ids) == 64


def test_batches_padding_sides() -> None:
    tok = pretrained(MISTRAL_TF0)
    dm = LabeledSequenceDataModule("tf0", train=str(TF0 / "dev.csv"), test=str(TF0 / "test.csv"),
                                   batch_size=16)
    dm.set_tokenizer(tok, 256)
    dm.setup("fit")
    batch = next(iter(dm.loader("test")))
    assert batch["input_ids"].shape[0] == 16
    lengths = batch["attention_mask"].sum(1)
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tok.pad_token_id).all()
    assert (batch["input_ids"][:, 0] == tok.cls_token_id).all()  # right padding
    assert batch["input_ids"].shape[1] == int(lengths.max())
    tok.padding_side = "left"
    left = next(iter(dm.loader("test")))
    assert (left["input_ids"][:, -1] == tok.sep_token_id).all()
    assert left["labels"].tolist() == batch["labels"].tolist()
