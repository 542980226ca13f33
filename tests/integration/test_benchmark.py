"""From-scratch CNN baseline and ``genolm-benchmark`` on planted motifs and a tiny slice of real GUE tf0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATA, MISTRAL_TF0, compose_cfg, run_cli

from genolm.baselines.cnn import evaluate, fit_cnn, one_hot
from genolm.benchmark.runs import finetune_config
from genolm.config_schema import BenchmarkConfig
from genolm.pipelines.benchmark import run
from genolm.utils import report_errors

MOTIF = "TGACGTCA"
LM = f"backbones={{lm: {MISTRAL_TF0}}}"


def planted(n: int, seed: int, length: int = 60) -> tuple[list[str], np.ndarray]:
    """Random DNA; label 1 = the 8-mer MOTIF planted at a random place (label 0 never holds it)."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], rng.integers(0, 2, n)
    for label in labels:
        seq = "".join(rng.choice(list("ACGT"), length))
        while not label and MOTIF in seq:
            seq = "".join(rng.choice(list("ACGT"), length))
        if label:
            at = rng.integers(0, length - len(MOTIF))
            seq = seq[:at] + MOTIF + seq[at + len(MOTIF):]
        seqs.append(seq)
    return seqs, labels


def test_one_hot_codes_bases_n_and_padding() -> None:
    x = one_hot(["ACgtN", "AC"])
    assert x.shape == (2, 4, 5)
    assert np.array_equal(x[0, :, :4], np.eye(4)) and np.allclose(x[0, :, 4], 0.25)
    assert np.array_equal(x[1, :, 2:], np.zeros((4, 3)))


@pytest.mark.fit
def test_cnn_finds_a_planted_motif(one_thread: None) -> None:
    train, dev, test = planted(1500, 0), planted(300, 1), planted(400, 2)
    fit = fit_cnn(*train, *dev, seed=0, max_epochs=10, patience=3, filters=16, width=9)
    metrics = evaluate(fit, *test)
    # chance is MCC 0 (sd about 1/sqrt(400) = 0.05 on 400 test sequences): 0.8 cannot hold by luck
    assert metrics["mcc"] > 0.8 and metrics["auroc"] > 0.95, metrics
    assert set(metrics) == {"mcc", "auroc", "accuracy", "f1"}
    assert fit.dev_mcc == max(h["dev_mcc"] for h in fit.history)


@pytest.mark.fit
def test_cnn_is_deterministic_for_a_seed(one_thread: None) -> None:
    train, dev = planted(300, 3), planted(100, 4)
    fits = [fit_cnn(*train, *dev, seed=seed, max_epochs=2, filters=8) for seed in (7, 7, 8)]
    probs = [f.predict_proba(dev[0]) for f in fits]
    assert np.array_equal(probs[0], probs[1]) and fits[0].history == fits[1].history
    assert not np.array_equal(probs[0], probs[2])


def tiny_gue(root: Path) -> Path:
    """A stratified slice of real GUE tf0 in the GUE layout (300 train, 100 dev, 120 test)."""
    folder = root / "GUE" / "tf" / "0"
    folder.mkdir(parents=True)
    for split, n in (("train", 300), ("dev", 100), ("test", 120)):
        table = pd.read_csv(DATA / "GUE" / "tf" / "0" / f"{split}.csv")
        table.groupby("label").sample(n // 2, random_state=0).to_csv(folder / f"{split}.csv", index=False)
    return root


def bench_overrides(tmp_path: Path) -> list[str]:
    return [f"paths.data_dir={tiny_gue(tmp_path / 'data')}", f"paths.log_dir={tmp_path / 'logs'}",
            f"paths.output_dir={tmp_path / 'hydra'}", "tasks=[tf0]", "seeds=2",
            f"backbones={{mistral_tf0: {MISTRAL_TF0}}}", "cnn.max_epochs=2", "cnn.filters=16",
            "kmer={ks: [3], cs: [1]}", "bootstrap.n=200",
            "finetune=['trainer.enable_progress_bar=false','trainer.max_epochs=1',"
            "'+trainer.limit_train_batches=2','trainer.num_sanity_val_steps=0','data.batch_size=32']"]


@pytest.mark.fit
@pytest.mark.subprocess
def test_benchmark_end_to_end_and_resume(tmp_path: Path, one_thread: None) -> None:
    overrides = bench_overrides(tmp_path)
    result = run(compose_cfg("benchmark", overrides))
    out = tmp_path / "logs" / "benchmark" / "results"
    assert result["started"] == 5 and result["skipped"] == 0  # 2 finetunes, 2 CNN fits, 1 k-mer fit
    table = pd.read_csv(out / "benchmark.tsv", sep="\t")
    assert list(table["model"]) == ["mistral_tf0", "cnn", "kmer"] and list(table["seeds"]) == [2, 2, 1]
    assert {"mcc_mean", "mcc_sd", "mcc_lo", "mcc_hi", "auroc_mean", "mcc_vs_ref", "mcc_vs_ref_lo",
            "mcc_vs_ref_ahead", "mcc_vs_kmer", "mcc_vs_kmer_hi", "auroc_vs_kmer"} <= set(table.columns)
    assert (table["mcc_lo"] <= table["mcc_mean"] + 1e-9).all()
    assert (table["mcc_mean"] <= table["mcc_hi"] + 1e-9).all()
    assert table["mcc_vs_ref"].isna().tolist() == [True, False, False]
    assert table["mcc_vs_kmer"].isna().tolist() == [False, False, True]
    predictions = pd.read_csv(out / "runs/tf0/cnn/seed1/predictions_test.tsv", sep="\t")
    assert list(predictions.columns) == ["id", "label", "pred", "prob_0", "prob_1"]
    assert len(predictions) == 120
    (out / "runs/tf0/cnn/seed2/metrics.json").unlink()  # as a crash before the last write leaves it
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/metrics.json")}
    assert len(stamps) == 4
    again = run_cli("genolm-benchmark", *overrides)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 runs done, 4 already finished" in again.stdout
    assert (out / "runs/tf0/cnn/seed2/metrics.json").is_file()
    assert "| tf0 | mistral_tf0 | 2 |" in (out / "benchmark.md").read_text()
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())  # finished runs untouched
    for seed in (1, 2):  # the CNN runs again, laid out as a `make gue` sweep's jobs
        job = tmp_path / "sweep" / str(seed - 1)
        shutil.copytree(out / f"runs/tf0/cnn/seed{seed}", job)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")
    summary = run(compose_cfg("benchmark", [*overrides, "aggregate=true", "reference=cnn",
                                            f"extra_runs={{copy: ['{tmp_path}/sweep/*']}}"]))
    numbers = summary["table"].set_index("model")
    assert summary["started"] == 0 and list(numbers.index) == ["cnn", "copy", "mistral_tf0", "kmer"]
    assert numbers.loc["copy", "mcc_vs_ref"] == 0 and numbers.loc["copy", "mcc_vs_ref_hi"] == 0
    assert numbers.loc["copy", "mcc_mean"] == numbers.loc["cnn", "mcc_mean"]


@pytest.mark.fit
def test_embedding_probe_rows_come_from_genolm_embed(tmp_path: Path, one_thread: None) -> None:
    overrides = [*bench_overrides(tmp_path), "seeds=1", "baselines=[kmer]", "probe=true"]
    result = run(compose_cfg("benchmark", overrides))
    assert result["started"] == 3  # a finetune, the k-mer LR, the probe
    table = result["table"].set_index("model")
    assert list(table.index) == ["mistral_tf0", "mistral_tf0_probe", "kmer"]
    folder = tmp_path / "logs" / "benchmark" / "results" / "runs" / "tf0" / "mistral_tf0_probe" / "seed0"
    probe = json.loads((folder / "embed" / "probe_metrics.json").read_text())
    assert table.loc["mistral_tf0_probe", "mcc_mean"] == pytest.approx(probe["test"]["mcc"], abs=1e-9)
    assert table.loc["mistral_tf0_probe", "seeds"] == 1 and probe["n_test"] == 120
    again = run(compose_cfg("benchmark", overrides))
    assert again["started"] == 0 and again["skipped"] == 3


def test_finetune_runs_share_the_benchmark_wandb_group(tmp_path: Path) -> None:
    cfg = compose_cfg("benchmark", [f"paths.log_dir={tmp_path}", "task_name=bench7",
                                    "finetune=['logger=wandb','trainer.max_epochs=2']"])
    run_cfg = finetune_config(cfg, "tf1", "some/model", 3, tmp_path / "run", "demo")
    assert run_cfg.logger.wandb.group == "bench7" and run_cfg.logger.wandb.name == "tf1/demo/seed3"
    assert run_cfg.trainer.max_epochs == 2 and run_cfg.seed == 3 and run_cfg.data.name == "tf1"
    assert run_cfg.paths.output_dir == str(tmp_path / "run")


@pytest.mark.parametrize("override,message", [
    ("tasks=[tf9]", "unknown task 'tf9': no conf/task/tf9.yaml"),
    ("backbones={lm: /nonexistent/model}", "/nonexistent/model: neither a genolm .ckpt file nor"),
    ("seeds=0", "seeds=0: Input should be greater than 0"),
    ("baselines=[kmer,svm]", "baselines.1='svm'"),
    (f"backbones={{cnn: {MISTRAL_TF0}}}", "model name 'cnn' is taken by a baseline"),
    (f"{LM}|finetune=['trainer=ddp_cpu']", "finetunes in its own process on one device"),
    (f"{LM}|finetune=['data.batch_size=0']", "data.batch_size=0"),
    (f"{LM}|finetune=['trainer.nope=1']", "finetune overrides of lm on tf0"),
])
def test_bad_inputs_give_one_line(tmp_path: Path, override: str, message: str,
                                  capsys: pytest.CaptureFixture) -> None:
    cfg = compose_cfg("benchmark", [f"paths.log_dir={tmp_path}", f"paths.output_dir={tmp_path / 'h'}",
                                    "tasks=[tf0]", *override.split("|")])
    with pytest.raises(SystemExit) as exit_info:
        report_errors(BenchmarkConfig)(run)(cfg)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "benchmark").exists()

