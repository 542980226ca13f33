"""Hardening: weights-only checkpoint loading, model-kind checks at every entrypoint, genome index keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, MISTRAL_TF0, compose_cfg, run_cli, tiny_overrides, write_fasta
from omegaconf import OmegaConf

from genolm.checkpoints import (
    classifier_from_pretrained,
    load_causal_lm,
    load_classifier,
    safe_load,
)
from genolm.errors import GenolmError
from genolm.export import export_checkpoint
from genolm.modules.causal_lm import CausalLMModule
from genolm.pipelines.finetune import train as finetune
from genolm.pipelines.pretrain import train as pretrain
from genolm.scoring.variants import read_vcf_windows
from genolm.training.resume import AtomicCheckpointIO, check_same_shapes

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickles as ``open(marker, "w")``: a stand-in for any code a crafted checkpoint runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def crafted(folder: Path, kind: str) -> tuple[Path, Path]:
    """A ``.ckpt`` that looks like a genolm checkpoint of ``kind`` but runs code when unpickled."""
    folder.mkdir(parents=True, exist_ok=True)
    path, marker = folder / f"crafted_{kind}.ckpt", folder / f"payload_ran_{kind}"
    torch.save({"state_dict": {}, "genolm": {"kind": kind}, "hyper_parameters": {"x": Payload(marker)}},
               path)
    return path, marker


@pytest.fixture(scope="module")
def real_ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny real pretraining checkpoint and a classifier finetuned from it."""
    root = tmp_path_factory.mktemp("real")
    torch.set_num_threads(1)
    _, pre = pretrain(compose_cfg("pretrain", tiny_overrides(root / "pre", root / "cache") + [
        "trainer.max_steps=3", "tokenizer=bpe", "tokenizer.vocab_size=300"]))
    _, fine = finetune(compose_cfg("finetune", [
        f"paths.output_dir={root / 'ft'}", f"paths.data_dir={DATA}", "logger=csv", "task=tf0",
        f"model_path={pre['best_ckpt']}", "data.limit_train=64", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=2", "+trainer.limit_test_batches=2"]))
    return {"lm": Path(pre["best_ckpt"]), "lm_last": Path(pre["best_ckpt"]).with_name("last.ckpt"),
            "classifier": Path(fine["best_ckpt"]), "pre_dir": root / "pre", "cache": root / "cache"}


def test_every_loader_refuses_a_crafted_checkpoint(tmp_path: Path) -> None:
    path, marker = crafted(tmp_path, "causal_lm")
    module = CausalLMModule({"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "num_key_value_heads": 2,
                             "num_local_experts": 2, "num_experts_per_tok": 1}, 8, 0, 1, 2)
    loaders = [safe_load, load_causal_lm, load_classifier, export_checkpoint,
               lambda p: classifier_from_pretrained(p, 2), lambda p: check_same_shapes(p, module),
               lambda p: AtomicCheckpointIO().load_checkpoint(p)]
    for load in loaders:
        with pytest.raises(GenolmError, match="refused") as err:
            load(path) if load is not export_checkpoint else load(path, tmp_path / "out")
        assert str(path) in str(err.value) and "\n" not in str(err.value)
        assert not marker.exists(), load


@pytest.mark.subprocess
@pytest.mark.parametrize("cli,kind,arg", [
    ("genolm-eval", "classifier", "model_path"),
    ("genolm-optimize", "classifier", "model_path"),
    ("genolm-finetune", "causal_lm", "model_path"),
    ("genolm-pretrain", "causal_lm", "ckpt_path"),
    ("genolm-score", "causal_lm", "model_path"),
    ("genolm-generate", "causal_lm", "model_path"),
])
def test_cli_refuses_a_crafted_checkpoint(tmp_path: Path, cache_dir: Path, cli: str, kind: str,
                                          arg: str) -> None:
    path, marker = crafted(tmp_path / "in", kind)
    extra = {"genolm-optimize": ["start.random_length=30", "start.n=1"],
             "genolm-finetune": ["data.limit_train=64", "trainer.max_epochs=1"],
             "genolm-pretrain": [o for o in tiny_overrides(tmp_path, cache_dir)
                                 if not o.startswith("paths.output_dir")] + ["trainer.max_steps=2"]}
    res = run_cli(cli, f"{arg}={path}", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}",
                  *extra.get(cli, []))
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"genolm: error: {path}: refused") and "Traceback" not in res.stderr
    assert not marker.exists()


@pytest.mark.subprocess
def test_export_hf_cli_refuses_a_crafted_checkpoint(tmp_path: Path) -> None:
    path, marker = crafted(tmp_path, "causal_lm")
    res = run_cli("genolm-export-hf", str(path), str(tmp_path / "out"))
    assert res.returncode == 1 and res.stderr.startswith(f"genolm: error: {path}: refused")
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.fit
def test_real_checkpoints_load_weights_only_and_resume(real_ckpts, tmp_path: Path) -> None:
    for name in ("lm", "lm_last", "classifier"):
        assert safe_load(real_ckpts[name])["genolm"]["kind"] in ("causal_lm", "classifier")
    model, tok = load_causal_lm(real_ckpts["lm"])
    assert len(tok) == 300 and model.config.vocab_size == 300
    classifier = load_classifier(real_ckpts["classifier"], num_labels=2)
    assert classifier.net.score.out_features == 2 and classifier.tokenizer is not None
    resumed = compose_cfg("pretrain", tiny_overrides(tmp_path / "resumed", real_ckpts["cache"]) + [
        "trainer.max_steps=5", "tokenizer=bpe", "tokenizer.vocab_size=300",
        f"ckpt_path={real_ckpts['lm_last']}"])
    _, objects = pretrain(resumed)
    assert objects["trainer"].global_step == 5 and objects["resumed_from"] == str(real_ckpts["lm_last"])


def test_hparams_are_saved_as_plain_data(tmp_path: Path) -> None:
    """OmegaConf, path and numpy hyper-parameters must not make a genolm checkpoint unloadable."""
    arch = OmegaConf.create({"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "num_key_value_heads": 2,
                             "num_local_experts": 2, "num_experts_per_tok": 1})
    module = CausalLMModule(arch, 8, 0, 1, 2, optimizer={"lr": np.float64(1e-3), "where": tmp_path,
                                                         "betas": OmegaConf.create([0.9, 0.95])})
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "m.ckpt")
    hparams = safe_load(tmp_path / "m.ckpt")["hyper_parameters"]
    assert hparams["arch"]["hidden_size"] == 8 and type(hparams["arch"]) is dict
    assert hparams["optimizer"] == {"lr": 1e-3, "where": str(tmp_path), "betas": [0.9, 0.95]}


def test_lm_loaders_refuse_classifiers_and_back(real_ckpts) -> None:
    for path in (MISTRAL_TF0, real_ckpts["classifier"]):
        with pytest.raises(GenolmError, match=r"sequence classifier.*not a causal LM"):
            load_causal_lm(path)
    with pytest.raises(GenolmError, match="a causal LM checkpoint, not a sequence classifier"):
        load_classifier(real_ckpts["lm"])


@pytest.mark.subprocess
@pytest.mark.parametrize("cli,args", [
    ("genolm-score", ["model_path={tf0}", "limit=5"]),
    ("genolm-generate", ["model_path={tf0}", "n=2", "length=20"]),
    ("genolm-export-hf", ["{classifier}", "{tmp}/out"]),
])
def test_cli_refuses_the_wrong_model_kind(real_ckpts, tmp_path: Path, cli: str, args: list[str]) -> None:
    given = {"tf0": MISTRAL_TF0, "classifier": real_ckpts["classifier"], "tmp": tmp_path}
    args = [a.format(**given) for a in args]
    hydra = [f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}"] if cli != "genolm-export-hf" else []
    res = run_cli(cli, *args, *hydra)
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("genolm: error: ") and "not a causal LM" in last, last
    assert "sequence classifier" in last and "Traceback" not in res.stderr


def test_genome_index_is_keyed_by_content_not_name(tmp_path: Path) -> None:
    """Two different genomes named ``genome.fa`` must not share a cached index."""
    rng = np.random.default_rng(0)
    first, second = ("".join(rng.choice(list("ACGT"), n)) for n in (3000, 5000))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    write_fasta(tmp_path / "a" / "genome.fa", {"chr1": first})
    # other header and line width: the first genome's offsets are wrong for the second
    (tmp_path / "b" / "genome.fa").write_text(
        ">chr1 second assembly\n" + "".join(second[i:i + 50] + "\n" for i in range(0, 5000, 50)))
    vcf = tmp_path / "v.vcf"
    for genome, dna in ((tmp_path / "a" / "genome.fa", first), (tmp_path / "b" / "genome.fa", second)):
        alt = "A" if dna[1999] != "A" else "C"
        vcf.write_text(f"chr1\t2000\tv\t{dna[1999]}\t{alt}\n")
        pairs, skipped = read_vcf_windows(vcf, genome, 101, tmp_path / "cache" / "faidx")
        assert not any(skipped.values()) and pairs["ref"][0] == dna[1949:2050], genome
    assert len(list((tmp_path / "cache" / "faidx").glob("*.fai"))) == 2
