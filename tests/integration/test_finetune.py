"""Finetuning and evaluation on real GUE data with real Mistral-DNA and genolm checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import DATA, compose_cfg, run_cli, tiny_overrides
from transformers import AutoModelForSequenceClassification

from genolm.checkpoints import safe_load
from genolm.models.fast.switch import fast_mode
from genolm.modules.classifier import SequenceClassifierModule
from genolm.pipelines.evaluate import evaluate
from genolm.pipelines.finetune import train
from genolm.pipelines.pretrain import train as pretrain

MODELS = DATA / "models"
TF0_MODEL = MODELS / "Mistral-DNA-v1-1M-hg38-finetuned-tf0"
TF1_MODEL = MODELS / "Mistral-DNA-v1-1M-hg38-finetuned-tf1"


def finetune_cfg(out: Path, *extra: str):
    return compose_cfg("finetune", [
        f"paths.output_dir={out}", f"paths.data_dir={DATA}", "logger=csv",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", *extra])


def test_mistral_dna_import_matches_transformers() -> None:
    module = SequenceClassifierModule(init_from=str(TF0_MODEL), num_labels=2).eval()
    reference = AutoModelForSequenceClassification.from_pretrained(str(TF0_MODEL)).eval()
    batch = module.tokenizer(["ACGTTGCAAGTCCAGTTTGACCATGGCA", "GGGCCCATATATCG"], padding=True,
                             return_tensors="pt")
    with torch.no_grad(), fast_mode(module.net, False):  # both on transformers' own kernels
        assert torch.equal(module(batch["input_ids"], batch["attention_mask"]), reference(**batch).logits)


def test_eval_reproduces_reference_tf0(tmp_path: Path) -> None:
    cfg = compose_cfg("eval", [f"paths.output_dir={tmp_path}", f"paths.data_dir={DATA}",
                               f"model_path={TF0_MODEL}", "task=tf0", "split=test", "strand=forward",
                               "trainer.enable_progress_bar=false"])
    metrics, _ = evaluate(cfg)
    assert metrics["test/mcc"] == pytest.approx(0.507, abs=0.01)
    assert metrics["test/auroc"] == pytest.approx(0.829, abs=0.01)
    table = pd.read_csv(tmp_path / "predictions_test.tsv", sep="\t")
    assert list(table.columns) == ["id", "label", "pred", "prob_0", "prob_1"] and len(table) == 1000
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["test/mcc"] == metrics["test/mcc"]


@pytest.mark.fit
def test_finetune_new_head_beats_chance_and_reloads(tmp_path: Path) -> None:
    cfg = finetune_cfg(tmp_path, f"model_path={TF1_MODEL}", "model.new_head=true", "task=tf0",
                       "data.limit_train=3000", "trainer.max_epochs=2", "model.optimizer.lr=1e-3")
    metrics, objects = train(cfg)
    assert metrics["test/mcc"] > 0.25 and metrics["val/mcc_best"] >= metrics["val/mcc"] - 1e-6
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["metrics"]["test/auroc"] == metrics["test/auroc"]
    table = pd.read_csv(tmp_path / "predictions_test.tsv", sep="\t")
    reloaded = SequenceClassifierModule.load_from_checkpoint(objects["best_ckpt"]).eval()
    batch = reloaded.tokenizer(["ACGT" * 25], return_tensors="pt")
    objects["model"].eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch), objects["model"](**batch))
    assert len(table) == 1000 and set(table["pred"]) == {0, 1}


@pytest.mark.fit
def test_finetune_max_steps_within_first_epoch(tmp_path: Path) -> None:
    # 256 records in batches of 32, 2 per optimizer step: 4 steps per epoch, the run stops after 3
    cfg = finetune_cfg(tmp_path, f"model_path={TF1_MODEL}", "task=tf0", "data.limit_train=256",
                       "data.batch_size=32", "trainer.accumulate_grad_batches=2", "trainer.max_steps=3")
    metrics, objects = train(cfg)
    best = tmp_path / "checkpoints" / "best.ckpt"
    assert objects["best_ckpt"] == str(best) and objects["trainer"].global_step == 3
    assert safe_load(best)["global_step"] == 3  # validated and saved at the last step
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["best_ckpt"] == str(best) and written["global_step"] == 3
    assert {"val/loss", "val/mcc_best", "test/loss", "test/mcc"} <= set(written["metrics"])
    assert len(pd.read_csv(tmp_path / "predictions_test.tsv", sep="\t")) == 1000


def _snapshot(module: SequenceClassifierModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.net.named_parameters()}


@pytest.mark.fit
def test_lora_and_probe_freeze_the_backbone(tmp_path: Path) -> None:
    for mode in ("lora", "probe"):
        cfg = finetune_cfg(tmp_path / mode, f"classifier={mode}", f"model_path={TF1_MODEL}",
                           "task=tf0", "data.limit_train=256", "trainer.max_epochs=1",
                           "callbacks=none")
        from hydra.utils import instantiate

        before = _snapshot(instantiate(cfg.model, init_from=cfg.model_path, num_labels=2))
        _, objects = train(cfg)
        after = _snapshot(objects["model"])
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and all("lora_" in k or "score" in k for k in changed), (mode, changed)
        if mode == "lora":
            assert any("lora_" in k for k in changed) and any("score" in k for k in changed)


@pytest.mark.fit
def test_finetune_from_genolm_pretraining(tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_cfg("pretrain", tiny_overrides(tmp_path / "pre", cache_dir) + [
        "trainer.max_steps=3", "tokenizer=bpe", "tokenizer.vocab_size=300"])
    _, pre = pretrain(cfg)
    backbone = {k.removeprefix("net."): v for k, v in pre["model"].state_dict().items()
                if k.startswith("net.model.")}
    for init in (pre["best_ckpt"], pre["hf_dir"]):
        module = SequenceClassifierModule(init_from=str(init), num_labels=3)
        state = module.net.state_dict()
        assert all(torch.equal(state[k], v) for k, v in backbone.items())
        assert module.net.score.out_features == 3 and len(module.tokenizer) == 300


@pytest.mark.subprocess
def test_multirun_writes_summary(tmp_path: Path) -> None:
    res = run_cli("genolm-finetune", "-m", "task=tf0,tf1", f"model_path={TF1_MODEL}",
                  "data.limit_train=200", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                  "data.eval_batch_size=500", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "finetune" / "multiruns").iterdir()
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["overrides"].str.contains("task=tf0").iloc[0] and len(summary) == 2
    assert {"test/mcc", "test/auroc", "val/mcc_best"} <= set(summary.columns)
    assert summary["test/mcc"].between(-1, 1).all()
    assert (sweep / "summary.md").read_text().startswith("| job | overrides | test/")


@pytest.mark.subprocess
@pytest.mark.parametrize("ckpt,match", [
    ("nowhere", "neither a genolm .ckpt file nor a Hugging Face folder"),
    ("models/Mixtral-8x7B-v0.1-dna-config", "not a sequence classifier"),
])
def test_eval_bad_checkpoint(tmp_path: Path, ckpt: str, match: str) -> None:
    res = run_cli("genolm-eval", f"model_path={DATA / ckpt}", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}")
    assert res.returncode == 1
    assert match in res.stderr.strip().splitlines()[-1] and "Traceback" not in res.stderr


@pytest.mark.subprocess
def test_optuna_sweep_runs_trials(tmp_path: Path) -> None:
    res = run_cli("genolm-finetune", "hparams_search=finetune_optuna", "hydra.sweeper.n_trials=2",
                  f"model_path={TF1_MODEL}", "data.limit_train=200", "trainer.max_epochs=1",
                  "trainer.enable_progress_bar=false", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "finetune" / "multiruns").iterdir()
    results = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in results and "model.optimizer.lr" in results
    assert len(pd.read_csv(sweep / "summary.csv")) == 2
