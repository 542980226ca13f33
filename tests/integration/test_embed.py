"""``genolm-embed``: poolings against the model's own hidden states, the cache, the probe, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CONF, DATA, MISTRAL_TF0, compose_cfg, run_cli, tiny_mixtral, write_fasta
from transformers import BertConfig, BertForMaskedLM, MixtralForCausalLM, MixtralForSequenceClassification

from genolm.baselines.probe import evaluate, fit_probe
from genolm.config_schema import EmbedConfig, validate
from genolm.data.tokenizers import char
from genolm.errors import GenolmError
from genolm.inference.embedding_cache import model_fingerprint
from genolm.inference.embeddings import embed
from genolm.models.fast.switch import lean_trunk, use_fast
from genolm.pipelines import embed as pipeline
from genolm.utils import report_errors

SEQS = ["ACGTTGCAGGATCCATTTGA", "TTG", "GGGCCCAAATTTACGTNACG", "ACGTACGTA", "T", "CCCCGGGGAAAATTTTACGTACGTAC"]


def tiny_bert():
    """A random 2-layer BERT masked LM over genolm's single-base tokenizer (``[CLS] ... [SEP]``)."""
    tok = char()
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return BertForMaskedLM(config).eval(), tok


def manual(model, tok, seq: str, layer: int, pooling: str) -> np.ndarray:
    """The pooled vector from the full model's own ``hidden_states`` on one unpadded sequence."""
    with torch.no_grad():
        ids = torch.tensor([tok(seq)["input_ids"]])
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[layer][0]
    pooled = {"mean": hidden.mean(0), "max": hidden.amax(0), "last": hidden[-1], "cls": hidden[0]}
    return pooled[pooling].numpy()


@pytest.mark.parametrize("build", [lambda: tiny_mixtral(MixtralForCausalLM), tiny_bert],
                         ids=["mixtral", "bert"])
@pytest.mark.parametrize("layer", [-1, 1, 0])
@pytest.mark.parametrize("pooling", ["mean", "last", "cls", "max"])
def test_pooling_equals_the_models_hidden_states(build, layer: int, pooling: str) -> None:
    model, tok = build()
    got = embed(model, tok, SEQS, layer=layer, pooling=pooling, batch_size=2)  # mixed lengths, padded
    assert got.shape == (len(SEQS), 16) and got.dtype == np.float32
    want = np.stack([manual(model, tok, s, layer, pooling) for s in SEQS])
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("cls", [MixtralForCausalLM, MixtralForSequenceClassification])
def test_the_fast_trunk_gives_the_same_last_layer(cls) -> None:
    model, tok = tiny_mixtral(cls)
    plain = {p: embed(model, tok, SEQS, pooling=p, batch_size=4) for p in ("mean", "last")}
    assert use_fast(model, "true") and lean_trunk(model)
    for pooling, want in plain.items():
        np.testing.assert_allclose(embed(model, tok, SEQS, pooling=pooling, batch_size=4), want, atol=2e-5)
    np.testing.assert_allclose(embed(model, tok, SEQS, layer=1), manual_all(model, tok, 1), atol=2e-5)


def manual_all(model, tok, layer: int) -> np.ndarray:
    """Mean-pooled ``hidden_states[layer]`` of every sequence of :data:`SEQS`, one at a time."""
    return np.stack([manual(model, tok, s, layer, "mean") for s in SEQS])


def test_order_is_the_input_order_whatever_the_batching() -> None:
    model, tok = tiny_mixtral(MixtralForCausalLM)
    base = embed(model, tok, SEQS, batch_size=64)
    perm = np.random.default_rng(0).permutation(len(SEQS))
    for batch_size in (1, 3):
        shuffled = embed(model, tok, [SEQS[i] for i in perm], batch_size=batch_size)
        np.testing.assert_allclose(shuffled, base[perm], atol=2e-5)
    np.testing.assert_allclose(embed(model, tok, [s.lower() for s in SEQS]), base, atol=2e-5)


def test_embed_refuses_what_it_cannot_do() -> None:
    model, tok = tiny_bert()
    too_long = r"^sequence 'long' \(100 b\) tokenizes to 102 tokens, more than the model's 64 positions"
    with pytest.raises(GenolmError, match=too_long):
        embed(model, tok, ["ACGT", "A" * 100], names=["short", "long"])
    with pytest.raises(GenolmError, match=r"layer=3: the model has 3 hidden states"):
        embed(model, tok, ["ACGT"], layer=3)
    with pytest.raises(GenolmError, match=r"pooling='sum': not one of"):
        embed(model, tok, ["ACGT"], pooling="sum")
    with pytest.raises(GenolmError, match="no sequences to embed"):
        embed(model, tok, [])


def test_probe_separates_synthetic_classes_and_refuses_one_class() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 32))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        return centres[y] + 0.6 * rng.normal(size=(n, 32)), y

    fit = fit_probe(*draw(300), *draw(100), cs=[0.01, 1.0])
    metrics = evaluate(fit.model, *draw(200))
    assert metrics["mcc"] > 0.9 and metrics["auroc"] > 0.95
    assert fit.c in (0.01, 1.0) and [g["c"] for g in fit.grid] == [0.01, 1.0]
    noise = evaluate(fit.model, rng.normal(size=(400, 32)), rng.integers(0, 2, 400))
    assert abs(noise["mcc"]) < 0.25  # the features, not the metric code, make the 0.9
    x, _ = draw(20)
    with pytest.raises(GenolmError, match="single class"):
        fit_probe(x, np.zeros(20), x, np.zeros(20))
    with pytest.raises(GenolmError, match="dev embeddings have 5 columns"):
        fit_probe(x, np.arange(20) % 2, x[:, :5], np.arange(20) % 2)


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    model, tok = tiny_mixtral(MixtralForCausalLM)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    return tmp_path / "lm"


def config(tmp_path: Path, run: str, *overrides: str):
    return compose_cfg("embed", [f"paths.output_dir={tmp_path}/{run}", f"paths.cache_dir={tmp_path}/cache",
                                 f"paths.data_dir={DATA}", *overrides])


def test_second_identical_run_comes_from_the_cache(tmp_path: Path, tiny_model: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "in.csv"
    pd.DataFrame({"sequence": SEQS, "label": [0, 1, 0, 1, 1, 0]}).to_csv(csv, index=False)
    first, objects = pipeline.run(config(tmp_path, "a", f"model_path={tiny_model}", f"input.csv={csv}",
                                         "pooling=last", "batch_size=2"))
    assert first["cached"] is False and first["shape"] == [6, 16]
    model, tok = tiny_mixtral(MixtralForCausalLM)
    np.testing.assert_allclose(objects["embeddings"], embed(model, tok, SEQS, pooling="last"), atol=2e-5)
    ids = pd.read_csv(tmp_path / "a" / "ids.tsv", sep="\t")
    assert ids.columns.tolist() == ["id", "label"] and ids["id"].tolist()[:2] == ["in:1", "in:2"]

    def no_model(self):
        raise AssertionError("the model was loaded on a cached run")

    monkeypatch.setattr(pipeline.LazyModel, "get", no_model)
    second, _ = pipeline.run(config(tmp_path, "b", f"model_path={tiny_model}", f"input.csv={csv}",
                                    "pooling=last", "batch_size=64"))
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    assert second["cached"] is True and meta["cached"] is True and meta["fingerprint"] == first["fingerprint"]
    assert np.array_equal(np.load(tmp_path / "b" / "embeddings.npy"), objects["embeddings"])
    for changed in ("pooling=mean", "layer=1", "input.n=5"):  # another request: another key, a miss
        with pytest.raises(AssertionError, match="model was loaded"):
            pipeline.run(config(tmp_path, "c", f"model_path={tiny_model}", f"input.csv={csv}", "pooling=last",
                                changed))


def test_a_masked_lm_folder_embeds_through_its_backbone(tmp_path: Path) -> None:
    model, tok = tiny_bert()
    model.save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    fasta = write_fasta(tmp_path / "in.fa", {f"s{i}": s for i, s in enumerate(SEQS)})
    metrics, objects = pipeline.run(config(tmp_path, "a", f"model_path={tmp_path / 'bert'}",
                                           f"input.fasta={fasta}", "pooling=cls", "layer=1"))
    assert metrics["shape"] == [len(SEQS), 16]
    want = np.stack([manual(model, tok, s, 1, "cls") for s in SEQS])
    np.testing.assert_allclose(objects["embeddings"], want, atol=1e-5)


def test_the_model_key_follows_file_contents_not_places(tmp_path: Path, tiny_model: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_model)  # a copied model still hits
    model, tok = tiny_mixtral(MixtralForCausalLM, seed=1)
    model.save_pretrained(copy)
    assert model_fingerprint(copy) != model_fingerprint(tiny_model)  # retrained weights miss


@pytest.mark.parametrize("task", sorted(p.stem for p in (CONF / "task").glob("*.yaml") if p.stem[0] != "_"))
def test_every_task_composes_into_probe_mode(task: str) -> None:
    extra = ["data.name=x", "data.task_dir=x"] if task == "gue" else []
    cfg = compose_cfg("embed", [f"paths.data_dir={DATA}", "paths.output_dir=/tmp/out", "model_path=x",
                                f"task={task}", *extra])
    validate(cfg, EmbedConfig)
    assert cfg.data._target_.endswith("LabeledSequenceDataModule")


@pytest.mark.fit
def test_task_probe_on_a_slice_of_tf0_beats_chance(tmp_path: Path) -> None:
    cfg = config(tmp_path, "run", f"model_path={MISTRAL_TF0}", "task=tf0", "probe.n_train=2000",
                 "probe.n_eval=400", "pooling=last")
    metrics, objects = pipeline.run(cfg)
    assert (metrics["n_train"], metrics["n_dev"], metrics["n_test"]) == (2000, 400, 400)
    assert {k: a.shape for k, a in objects["embeddings"].items()} == {
        "train": (2000, 64), "dev": (400, 64), "test": (400, 64)}
    # chance on 400 balanced test sequences: MCC sd ~0.05, AUROC sd ~0.03; a margin of 6+ sds
    assert metrics["test"]["mcc"] > 0.3 and metrics["test"]["auroc"] > 0.7, metrics["test"]
    saved = json.loads((tmp_path / "run" / "probe_metrics.json").read_text())
    assert saved["test"] == metrics["test"]
    assert saved["cached"] == {"train": False, "dev": False, "test": False}


@pytest.mark.parametrize("case,args,expected", [
    ("missing_file", ["input.fasta={tmp}/none.fa"], "{tmp}/none.fa: file not found"),
    ("bad_letter", ["input.fasta={tmp}/letters.fa"], "record 'r1': invalid letter 'X' at position 5"),
    ("empty_fasta", ["input.fasta={tmp}/empty.fa"], "{tmp}/empty.fa: no FASTA records found"),
    ("empty_record", ["input.fasta={tmp}/blank.fa"], "record 'b' is empty"),
    ("header_only_csv", ["input.csv={tmp}/header.csv"], "{tmp}/header.csv: no records"),
    ("too_long", ["input.fasta={tmp}/long.fa"], "sequence 'long' (300 b) tokenizes to 302 tokens"),
    ("unknown_pooling", ["input.fasta={tmp}/ok.fa", "pooling=sum"], "pooling='sum': Input should be"),
    ("two_sources", ["input.fasta={tmp}/ok.fa", "task=tf0"], "set exactly one of input.fasta, input.csv"),
    ("missing_model", ["input.fasta={tmp}/ok.fa", "model_path={tmp}/nomodel"], "{tmp}/nomodel: neither"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, tiny_model: Path, case: str,
                                                  args: list[str], expected: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    write_fasta(tmp_path / "letters.fa", {"r0": "ACGT", "r1": "ACGTXACGT"})
    write_fasta(tmp_path / "long.fa", {"ok": "ACGT", "long": "ACGT" * 75})
    write_fasta(tmp_path / "ok.fa", {"ok": "ACGT"})
    (tmp_path / "blank.fa").write_text(">a\nACGT\n>b\n\n")
    (tmp_path / "empty.fa").write_text("")
    (tmp_path / "header.csv").write_text("sequence,label\n")
    given = {"tmp": str(tmp_path)}
    cfg = config(tmp_path, "run", f"model_path={tiny_model}", *[a.format(**given) for a in args])
    with pytest.raises(SystemExit) as stop:
        report_errors(EmbedConfig)(pipeline.run)(cfg)
    assert stop.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()  # progress bars may come first
    assert [x for x in lines if "error" in x] == lines[-1:]
    assert lines[-1].startswith("genolm: error: ") and expected.format(**given) in lines[-1], lines[-1]
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@pytest.mark.subprocess
def test_cli_embeds_a_fasta_and_reports_bad_input_in_one_line(tmp_path: Path, tiny_model: Path) -> None:
    write_fasta(tmp_path / "in.fa", {"a": "ACGTTGCAGG", "b": "TTGACCAGTTTT", "c": "GA"})
    env = {"OMP_NUM_THREADS": "1", "GENOLM_CONFIG_DIR": str(CONF)}
    base = [f"model_path={tiny_model}", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}"]
    res = run_cli("genolm-embed", *base, f"input.fasta={tmp_path}/in.fa", "pooling=cls",
                  f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "3 sequences -> embeddings (3, 16) in " in res.stdout
    assert pd.read_csv(tmp_path / "run" / "ids.tsv", sep="\t")["id"].tolist() == ["a", "b", "c"]
    assert np.load(tmp_path / "run" / "embeddings.npy").shape == (3, 16)
    write_fasta(tmp_path / "bad.fa", {"r1": "ACGTXACGT"})
    res = run_cli("genolm-embed", *base, f"input.fasta={tmp_path}/bad.fa", cwd=tmp_path, env=env)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last == (f"genolm: error: {tmp_path}/bad.fa: record 'r1': invalid letter 'X' at position 5 "
                    "(1-based); only A, C, G, T and N (any case) are allowed")
    assert not (tmp_path / "logs").exists()
