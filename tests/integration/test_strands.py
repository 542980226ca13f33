"""Both strands: views and averaging, rc_aug training data, strand= in eval, finetuning, score, design."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CONF, DATA, MISTRAL_TF0, compose_cfg, run_cli, tiny_lm, write_fasta

from genolm import config_schema as schema
from genolm.checkpoints import load_classifier
from genolm.config_schema.base import Strand
from genolm.data.classification import LabeledSequenceDataModule
from genolm.data.labeled import read_labeled_csv
from genolm.data.samplers import StrandSampler
from genolm.data.sequences import reverse_complement
from genolm.data.tokenizers import char, pretrained
from genolm.design.oracle import classifier_oracle
from genolm.errors import GenolmError
from genolm.export import export_hf
from genolm.inference.strands import STRANDS, average_strands, on_strands, strand_views
from genolm.pipelines.evaluate import evaluate
from genolm.pipelines.finetune import train
from genolm.pipelines.optimize import build_oracle
from genolm.pipelines.score import run as score_run
from genolm.scoring.variants import read_fasta_pairs

TF0 = DATA / "GUE" / "tf" / "0"
TF1_MODEL = DATA / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf1"
SNP = DATA / "SNP"


def test_views_average_and_bad_strand() -> None:
    assert strand_views(["AACGn"], "forward") == [["AACGn"]]
    assert strand_views(["AACGn"], "reverse") == [["nCGTT"]]
    assert strand_views(["AACGn"], "average") == [["AACGn"], ["nCGTT"]]
    assert np.array_equal(average_strands([np.array([1.0, 2.0]), np.array([3.0, 6.0])]), [2.0, 4.0])
    assert torch.equal(average_strands([torch.tensor([1.0]), torch.tensor([2.0])]), torch.tensor([1.5]))
    frames = [pd.DataFrame({"id": ["a", "b"], "llr": [1.0, 2.0]}),
              pd.DataFrame({"id": ["x", "y"], "llr": [3.0, 0.0]})]
    mean = average_strands(frames)
    assert mean["id"].tolist() == ["a", "b"] and mean["llr"].tolist() == [2.0, 1.0]

    def a_minus(ref: list[str], alt: list[str]) -> np.ndarray:  # both columns flip together
        return np.array([r.count("A") - a.count("A") for r, a in zip(ref, alt, strict=True)], float)

    ref, alt = ["AAAC", "TTAG"], ["AAAA", "TTTT"]
    assert on_strands(a_minus, "forward", ref, alt).tolist() == [-1, 1]
    assert on_strands(a_minus, "reverse", ref, alt).tolist() == [0, -2]  # counts T of the originals
    assert on_strands(a_minus, "average", ref, alt).tolist() == [-0.5, -0.5]
    with pytest.raises(GenolmError, match="strand must be one of forward, reverse, average; got 'both'"):
        strand_views(["ACGT"], "both")
    assert get_args(Strand) == STRANDS  # the schema accepts exactly what the code does


def _decoded(tok, batch: dict[str, torch.Tensor]) -> list[str]:
    return [tok.decode(ids[mask.bool()], skip_special_tokens=True).replace(" ", "")
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)]


def _epoch(dm: LabeledSequenceDataModule, loader) -> pd.DataFrame:
    """One pass of ``loader``: per item its record index, label, sequence, and token count."""
    rows = []
    for batch in loader:
        for i, label, seq, n in zip(batch["index"].tolist(), batch["labels"].tolist(),
                                    _decoded(dm.tokenizer, batch), batch["attention_mask"].sum(1).tolist(),
                                    strict=True):
            rows.append({"index": i, "label": label, "seq": seq, "tokens": n})
    return pd.DataFrame(rows)


def _datamodule(tok, rc_aug: bool) -> LabeledSequenceDataModule:
    dm = LabeledSequenceDataModule("tf0", train=str(TF0 / "dev.csv"), val=str(TF0 / "test.csv"),
                                   test=str(TF0 / "test.csv"), batch_size=100, rc_aug=rc_aug, seed=3)
    dm.set_tokenizer(tok, 256)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_rc_aug_draws_every_sequence_once_per_epoch_on_a_random_strand(tokenizer: str) -> None:
    tok = char() if tokenizer == "char" else pretrained(MISTRAL_TF0)
    records = read_labeled_csv(TF0 / "dev.csv")
    dm = _datamodule(tok, rc_aug=True)
    loader = dm.loader("train", shuffle=True)
    first = _epoch(dm, loader)
    assert sorted(first["index"]) == list(range(len(records)))  # each record once
    truth = records.iloc[first["index"]].reset_index(drop=True)
    assert first["label"].tolist() == truth["label"].tolist()
    reverse = first["seq"].to_numpy() != truth["sequence"].to_numpy()
    rc = [reverse_complement(s) for s in truth["sequence"]]
    assert (first["seq"][reverse].to_numpy() == np.array(rc)[reverse]).all()
    assert 0.4 < reverse.mean() < 0.6, reverse.mean()  # both strands, about half each
    assert (first["seq"].str.len() == truth["sequence"].str.len()).all()
    if tokenizer == "char":
        assert (first["tokens"] == truth["sequence"].str.len() + 2).all()
    loader.sampler.set_epoch(1)
    second = _epoch(dm, loader).set_index("index").loc[first["index"]]
    assert (second["seq"].to_numpy() != first["seq"].to_numpy()).mean() > 0.3  # a new draw per epoch
    again = _datamodule(tok, rc_aug=True)
    assert _epoch(again, again.loader("train", shuffle=True))["seq"].tolist() == first["seq"].tolist()
    for split, shuffle in (("train", False), ("val", False), ("test", False)):  # never augmented
        frame = read_labeled_csv(TF0 / ("dev.csv" if split == "train" else "test.csv"))
        assert _epoch(dm, dm.loader(split, shuffle))["seq"].tolist() == frame["sequence"].tolist()
    plain = _datamodule(tok, rc_aug=False)
    got = _epoch(plain, plain.loader("train", shuffle=True))
    assert (got["seq"].to_numpy() == records["sequence"].iloc[got["index"]].to_numpy()).all()


def test_strand_sampler_is_process_count_independent_and_resumable() -> None:
    data = list(range(40))  # 20 sequences, both strands
    single = list(StrandSampler(data, 1, 0, seed=7))
    assert sorted(i % 20 for i in single) == list(range(20))
    ranks = [list(StrandSampler(data, 2, r, seed=7)) for r in (0, 1)]
    assert [i for pair in zip(*ranks, strict=True) for i in pair] == single
    assert list(StrandSampler(data, 1, 0, seed=7, start=12)) == single[12:]
    with pytest.raises(ValueError, match="both strands"):
        StrandSampler(list(range(5)))


def _task(root: Path, frame: pd.DataFrame) -> Path:
    """A GUE-layout folder whose three splits are ``frame``."""
    root.mkdir(parents=True)
    for name in ("train", "dev", "test"):
        frame[["sequence", "label"]].to_csv(root / f"{name}.csv", index=False)
    return root


def _eval(out: Path, task: Path, strand: str, ckpt: Path = MISTRAL_TF0) -> tuple[dict, pd.DataFrame]:
    cfg = compose_cfg("eval", [f"paths.output_dir={out}", f"model_path={ckpt}", "task=gue",
                               "data.name=t", f"data.task_dir={task}", f"strand={strand}",
                               "trainer.enable_progress_bar=false"])
    metrics, objects = evaluate(cfg)
    assert json.loads((out / "metrics.json").read_text())["strand"] == strand
    return metrics, objects["predictions"]


def test_eval_reverse_is_forward_of_the_reverse_complement_and_average_is_invariant(tmp_path: Path) -> None:
    frame = read_labeled_csv(TF0 / "test.csv").sample(160, random_state=0)
    fwd = _task(tmp_path / "fwd", frame)
    rev = _task(tmp_path / "rev", frame.assign(sequence=frame["sequence"].map(reverse_complement)))
    got = {(task.name, strand): _eval(tmp_path / f"{task.name}_{strand}", task, strand)[1]
           for task in (fwd, rev) for strand in STRANDS}
    probs = {key: table[["prob_0", "prob_1"]].to_numpy() for key, table in got.items()}
    assert np.allclose(probs["fwd", "reverse"], probs["rev", "forward"], atol=1e-5)
    assert np.allclose(probs["fwd", "average"], probs["rev", "average"], atol=1e-5)
    assert np.allclose(probs["fwd", "average"], (probs["fwd", "forward"] + probs["fwd", "reverse"]) / 2,
                       atol=1e-5)
    assert np.abs(probs["fwd", "forward"] - probs["fwd", "reverse"]).max() > 0.05  # strands do differ
    assert got["fwd", "average"]["label"].tolist() == frame["label"].tolist()


@pytest.mark.fit
def test_finetune_with_rc_aug_tests_on_both_strands_like_eval(tmp_path: Path) -> None:
    cfg = compose_cfg("finetune", [
        f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={DATA}", "logger=csv", "task=tf0",
        f"model_path={TF1_MODEL}", "data.limit_train=256", "data.batch_size=32",
        "trainer.max_steps=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "data.rc_aug=true", "strand=average"])
    metrics, objects = train(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["rc_aug"] is True and written["strand"] == "average"
    evaluated, table = _eval(tmp_path / "eval", TF0, "average", Path(objects["best_ckpt"]))
    assert metrics["test/mcc"] == pytest.approx(evaluated["test/mcc"], abs=1e-6)
    assert metrics["test/loss"] == pytest.approx(evaluated["test/loss"], abs=1e-5)
    assert np.allclose(objects["predictions"]["prob_1"], table["prob_1"], atol=1e-5) and len(table) == 1000


def test_oracle_strands(tmp_path: Path) -> None:
    seqs = read_labeled_csv(TF0 / "test.csv")["sequence"].iloc[:24].tolist()
    rc = [reverse_complement(s) for s in seqs]
    module = load_classifier(MISTRAL_TF0)
    for output in ("prob", "logit"):
        fwd, rev, avg = (classifier_oracle(module, output=output, device="cpu", strand=s) for s in STRANDS)
        assert np.allclose(rev(seqs), fwd(rc), atol=1e-5)
        assert np.allclose(avg(seqs), avg(rc), atol=1e-5)
        assert np.allclose(avg(seqs), (fwd(seqs) + fwd(rc)) / 2, atol=1e-5)  # probabilities or logits
        assert np.abs(fwd(seqs) - fwd(rc)).max() > 0.05
    cfg = compose_cfg("optimize", [f"model_path={MISTRAL_TF0}", "oracle.strand=average",
                                   f"paths.output_dir={tmp_path}", "device=cpu"])
    oracle = build_oracle(cfg)
    assert np.allclose(oracle.raw(seqs), oracle.raw(rc), atol=1e-5)
    with pytest.raises(GenolmError, match="strand must be one of"):
        classifier_oracle(module, strand="minus")


def test_score_strands_on_variant_pairs(tmp_path: Path) -> None:
    hf = export_hf(*tiny_lm(pretrained(MISTRAL_TF0)), tmp_path / "hf")
    pairs = read_fasta_pairs(SNP / "SNPexon_ref_201b.fasta.gz", SNP / "SNPexon_alt_201b.fasta.gz", "exon",
                             limit=16)
    files = {}
    for name, flip in (("fwd", str), ("rev", reverse_complement)):
        files[name] = [write_fasta(tmp_path / f"{name}_{side}.fa",
                                   dict(zip(pairs["id"], pairs[side].map(flip), strict=True)))
                       for side in ("ref", "alt")]

    def scores(name: str, strand: str) -> pd.DataFrame:
        ref, alt = files[name]
        cfg = compose_cfg("score", [f"model_path={hf}", f"inputs=[{{ref:{ref},alt:{alt},group:exon}}]",
                                    f"strand={strand}", "report.enabled=false", "device=cpu", "workers=1",
                                    f"paths.output_dir={tmp_path / name / strand}"])
        table, info = score_run(cfg)
        assert info["strand"] == strand and table["id"].tolist() == pairs["id"].tolist()
        return table[["l2", "cosine", "llr", "ref_ll"]]

    got = {(name, strand): scores(name, strand) for name in files for strand in STRANDS}
    assert np.allclose(got["fwd", "reverse"], got["rev", "forward"], atol=1e-4)
    assert np.allclose(got["fwd", "average"], got["rev", "average"], atol=1e-4)
    assert np.allclose(got["fwd", "average"], (got["fwd", "forward"] + got["fwd", "reverse"]) / 2, atol=1e-4)
    assert np.abs(got["fwd", "forward"]["llr"] - got["fwd", "reverse"]["llr"]).max() > 1e-3


@pytest.mark.parametrize("primary,key,required", [
    ("eval", "strand", "model_path=x"), ("finetune", "strand", "model_path=x"),
    ("score", "strand", "model_path=x"), ("optimize", "oracle.strand", "model_path=x")])
def test_bad_strand_is_one_line_config_error(primary: str, key: str, required: str) -> None:
    schemas = {"eval": schema.EvalConfig, "finetune": schema.FinetuneConfig, "score": schema.ScoreConfig,
               "optimize": schema.OptimizeConfig}
    base = ["paths.output_dir=/tmp/out", f"paths.data_dir={DATA}", required]
    schema.validate(compose_cfg(primary, base + [f"{key}=average"]), schemas[primary])
    with pytest.raises(GenolmError) as err:
        schema.validate(compose_cfg(primary, base + [f"{key}=both"]), schemas[primary])
    assert f"{key}='both'" in str(err.value) and "'average'" in str(err.value) and "\n" not in str(err.value)
    if primary == "finetune":
        with pytest.raises(GenolmError, match=r"data\.rc_aug='maybe'"):
            schema.validate(compose_cfg(primary, base + ["data.rc_aug=maybe"]), schemas[primary])


def test_shipped_defaults() -> None:
    """Defaults chosen in experiments/gue/STRAND.md; every ``data`` option (labelled tasks and
    pretraining corpora alike) has the same ``rc_aug`` key."""
    options = [(primary, group, p.stem) for primary, group in (("finetune", "task"), ("pretrain", "corpus"))
               for p in sorted((CONF / group).glob("*.yaml")) if not p.stem.startswith("_")]
    for primary, group, option in options:
        model = ["model_path=x"] if primary == "finetune" else []
        cfg = compose_cfg(primary, [f"{group}={option}", *model, f"paths.data_dir={DATA}"])
        assert cfg.data.rc_aug is False, option
    assert len(options) > 20
    assert compose_cfg("finetune", ["model_path=x"]).strand == "average"
    assert compose_cfg("eval", ["model_path=x"]).strand == "average"
    assert compose_cfg("score", ["model_path=x"]).strand == "forward"
    assert compose_cfg("optimize", ["model_path=x"]).oracle.strand == "forward"


@pytest.mark.subprocess
def test_cli_bad_strand(tmp_path: Path) -> None:
    res = run_cli("genolm-eval", f"model_path={MISTRAL_TF0}", "strand=minus", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}")
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert last.startswith("genolm: error: config: strand='minus'")
    assert "'forward', 'reverse' or 'average'" in last
