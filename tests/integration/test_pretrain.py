"""End-to-end pretraining on real chr22 data with a tiny Mixtral (real Lightning, real Hydra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import CHR22, DATA, run_cli, tiny_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from genolm.checkpoints import load_causal_lm_module
from genolm.errors import GenolmError
from genolm.models.fast.switch import fast_mode
from genolm.pipelines.pretrain import build, train


@pytest.mark.fit
def test_val_loss_falls_and_outputs_written(tiny_cfg) -> None:
    cfg = tiny_cfg("trainer.max_steps=60", "trainer.val_check_interval=30",
                   "model.optimizer.lr=3e-3", "model.scheduler.warmup_steps=5")
    objects = build(cfg)
    before = objects["trainer"].validate(objects["model"], datamodule=objects["datamodule"],
                                         verbose=False)[0]["val/loss"]
    metrics, objects = train(cfg)
    assert metrics["val/loss"] < before - 0.15, (before, metrics["val/loss"])
    assert metrics["val/ppl"] == pytest.approx(torch.exp(torch.tensor(metrics["val/loss"])).item(),
                                               rel=1e-4)
    # char tokens are single bases: bits per base = loss over targets (bases + [SEP]) in bits
    assert 1.0 < metrics["val/bits_per_base"] < 2.2
    out = Path(cfg.paths.output_dir)
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    written = json.loads((out / "metrics.json").read_text())
    assert written["global_step"] == 60 and written["metrics"]["val/loss"] == metrics["val/loss"]
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in ("train/loss", "train/tokens_per_s", "train/bases_per_s", "train/lr", "val/loss",
                 "val/ppl", "val/bits_per_base"):
        assert name in header


def test_checkpoint_and_hf_export_rebuild_without_hydra(tiny_cfg) -> None:
    cfg = tiny_cfg("trainer.max_steps=6", "tokenizer=bpe", "tokenizer.vocab_size=300")
    _, objects = train(cfg)
    module = load_causal_lm_module(objects["best_ckpt"]).eval()
    hf = AutoModelForCausalLM.from_pretrained(str(objects["hf_dir"]), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(objects["hf_dir"]), local_files_only=True)
    seqs = ["ACGTTGCAAGTCCAGTTTGACCATGG", "GGGCCCATATATCGCGTTAA"]
    assert tok(seqs)["input_ids"] == module.tokenizer(seqs)["input_ids"]
    assert tok(seqs)["input_ids"] == objects["tokenizer"](seqs)["input_ids"]
    batch = tok(seqs, return_tensors="pt", padding=True)
    with torch.no_grad(), fast_mode(module.net, False):  # both on transformers' own kernels
        ours = module(batch["input_ids"], batch["attention_mask"]).logits
        theirs = hf(**batch).logits
    assert torch.equal(ours, theirs)
    assert hf.config.vocab_size == 300 and hf.config.pad_token_id == tok.pad_token_id == 3


@pytest.mark.fit
def test_resume_from_last_continues_global_step(tiny_cfg, tmp_path: Path) -> None:
    first, objects = train(tiny_cfg("trainer.max_steps=8"))
    last = Path(objects["best_ckpt"]).with_name("last.ckpt")
    assert torch.load(last, weights_only=False)["global_step"] == 8
    resumed = tiny_cfg("trainer.max_steps=12", f"ckpt_path={last}",
                       f"paths.output_dir={tmp_path / 'resumed'}")
    _, objects = train(resumed)
    assert objects["trainer"].global_step == 12
    saved = torch.load(Path(objects["best_ckpt"]).with_name("last.ckpt"), weights_only=False)
    assert saved["global_step"] == 12


def test_chunk_longer_than_model_positions(tiny_cfg) -> None:
    cfg = tiny_cfg("data.packing=false", "model.arch.max_position_embeddings=64")
    with pytest.raises(GenolmError, match="tokenizes to 201 positions.*max_position_embeddings=64"):
        build(cfg)
    with pytest.raises(GenolmError, match="block_size=128 exceeds"):
        build(tiny_cfg("data.block_size=128", "model.arch.max_position_embeddings=64"))


@pytest.mark.subprocess
def test_cli_multirun_two_jobs(tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tmp_path, tmp_path / "cache")
                 if not o.startswith("paths.output_dir")]
    res = run_cli("genolm-pretrain", "-m", *overrides, "trainer.max_steps=3",
                  "model.optimizer.lr=1e-3,2e-3", "export_hf=false", f"paths.root_dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = sorted((tmp_path / "logs" / "pretrain" / "multiruns").glob("*/[0-9]"))
    assert [j.name for j in jobs] == ["0", "1"]
    lrs = []
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["global_step"] == 3 and metrics["metrics"]["val/loss"] > 0
        lrs.append((job / ".hydra" / "overrides.yaml").read_text())
    assert "model.optimizer.lr=0.001" in lrs[0] and "model.optimizer.lr=0.002" in lrs[1]


@pytest.mark.subprocess
def test_cli_missing_input_one_line_no_output(tmp_path: Path) -> None:
    res = run_cli("genolm-pretrain", f"data.inputs=[{tmp_path}/missing.fa]",
                  f"paths.root_dir={tmp_path}", "model=tiny", "tokenizer=char",
                  f"paths.data_dir={DATA}")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f"genolm: error: {tmp_path}/missing.fa: file not found"
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".cache" / "corpus").exists() or \
        not any((tmp_path / ".cache" / "corpus").iterdir())


@pytest.mark.fit
def test_wandb_logger_offline(tiny_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(Path(tiny_cfg().paths.output_dir).parent))
    cfg = tiny_cfg("trainer.max_steps=2", "logger=wandb", "export_hf=false")
    metrics, objects = train(cfg)
    import os

    assert os.environ["WANDB_MODE"] == "offline"
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and metrics["val/loss"] > 0
    import wandb

    wandb.finish()


def test_real_hg38_default_corpus_counts(cache_dir: Path) -> None:
    from genolm.data.corpus import load_corpus_meta, prepare_corpus

    corpus = prepare_corpus([DATA / "hg38" / "chr2_1-2333275.fa.gz", CHR22], cache_dir, name="hg38")
    counts = load_corpus_meta(corpus)["counts"]
    assert counts["records"] == 2
    assert counts["train"] + counts["val"] + counts["dropped_n"] == 2_333_275 // 200 + 1_000_000 // 200


@pytest.mark.subprocess
def test_cli_ddp_cpu_two_processes(tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tmp_path, tmp_path / "cache")
                 if not o.startswith("paths.output_dir")]
    res = run_cli("genolm-pretrain", *overrides, "trainer=ddp_cpu", "trainer.devices=2",
                  "trainer.max_steps=4", "trainer.enable_progress_bar=false",
                  f"paths.root_dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "pretrain" / "runs").iterdir()
    assert (run / "train_ddp_process_1.log").is_file()  # a second rank really ran
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 4 and metrics["metrics"]["train/aux_loss"] > 0
    assert (run / "hf" / "model.safetensors").is_file()


@pytest.mark.slow
def test_default_corpus_mistral_1m_learns(tmp_path: Path, cache_dir: Path) -> None:
    """The demo recipe, shortened: 150 steps of mistral_dna_1m on the default hg38 corpus."""
    overrides = [o for o in tiny_overrides(tmp_path, cache_dir)
                 if not o.startswith(("data.inputs", "model=", "tokenizer=", "data.block_size",
                                      "data.batch_size", "trainer.limit_val_batches"))]
    from helpers import compose_cfg

    cfg = compose_cfg("pretrain", overrides + ["experiment=demo", "trainer.max_steps=150",
                                               "logger=csv", "trainer.enable_progress_bar=false"])
    metrics, _ = train(cfg)
    # untrained: ln(4096) = 8.32 nats per token, about 2.4 bits per base
    assert metrics["val/loss"] < 7.2 and metrics["val/bits_per_base"] < 2.1, metrics
