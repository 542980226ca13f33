"""Pretraining's LM-vs-Markov report and ``genolm-eval-lm`` on a tiny real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import DATA, run_cli, write_fasta

from genolm.baselines.markov import MarkovChains
from genolm.data.sequences import reverse_complement
from genolm.pipelines.pretrain import format_summary, train

YEAST = DATA / "yeast" / "R64-1-1_chrI_X_XIII_softmasked.fa.gz"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    from helpers import compose_cfg, tiny_overrides

    out = tmp_path_factory.mktemp("lm")
    cfg = compose_cfg("pretrain", tiny_overrides(out / "run", cache_dir) + [
        "trainer.max_steps=40", "trainer.val_check_interval=20", "model.optimizer.lr=3e-3",
        "baseline.max_order=6"])
    metrics, objects = train(cfg)
    return cfg, metrics, objects


@pytest.mark.fit
def test_pretraining_reports_lm_beside_markov_chains(tiny_run) -> None:
    cfg, metrics, objects = tiny_run
    out = Path(cfg.paths.output_dir)
    corpus = Path(objects["datamodule"].corpus_dir)
    train_chunks = (corpus / "train.txt").read_text().split()
    chains = MarkovChains(6).fit(train_chunks)
    markov = chains.bits_per_base((corpus / "val.txt").read_text().split())
    both = MarkovChains(6).fit(train_chunks + [reverse_complement(c) for c in train_chunks])
    markov_both = both.bits_per_base((corpus / "val.txt").read_text().split())
    best = min(markov, key=markov.get)
    best_both = min(markov_both, key=markov_both.get)
    top = min(markov[best], markov_both[best_both])
    assert metrics["baseline/markov_bits_per_base"] == pytest.approx(top)
    if markov[best] <= markov_both[best_both]:
        assert metrics["baseline/markov_order"] == best and metrics["baseline/markov_both_strands"] == 0
        row = f"| Markov order {best} | {markov[best]:.4f} (best) | {markov_both[best]:.4f} |"
    else:
        assert metrics["baseline/markov_order"] == best_both and metrics["baseline/markov_both_strands"] == 1
        row = f"| Markov order {best_both} | {markov[best_both]:.4f} | {markov_both[best_both]:.4f} (best) |"
    # the LM scored on the same chunks alone is close to the packed validation loop's figure
    assert abs(metrics["val/bits_per_base_windows"] - metrics["val/bits_per_base"]) < 0.1
    report = (out / "lm_vs_baselines.md").read_text()
    assert row in report
    assert f"| **LM** | **{metrics['val/bits_per_base_windows']:.4f}** |" in report
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert [s for s, _ in objects["model"].curve] == sorted(s for s, _ in objects["model"].curve)
    assert len(objects["model"].curve) == 2 and objects["model"].curve[0][0] > 0
    saved = json.loads((out / "metrics.json").read_text())["metrics"]
    assert saved["baseline/markov_bits_per_base"] == metrics["baseline/markov_bits_per_base"]
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"baseline/markov_bits_per_base", "val/bits_per_base_windows", "val/bases_seen"} <= set(header)
    assert "best Markov chain (order" in format_summary(metrics, objects)


@pytest.mark.subprocess
def test_eval_lm_cli_on_other_dna(tiny_run, tmp_path: Path) -> None:
    _, metrics, objects = tiny_run
    res = run_cli("genolm-eval-lm", f"model_path={objects['hf_dir']}", f"fasta=[{YEAST}]", "window=100",
                  "max_windows=60", "baseline.max_order=4", f"paths.output_dir={tmp_path / 'e'}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "60 windows (6,000 bases" in res.stdout and "Markov order  4: " in res.stdout
    got = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert got["start"] == "sep" and got["windows"] == 60 and got["bases"] == 6000
    assert 1.5 < got["lm_bits_per_base"] < 2.5
    # default chains: fitted on the model's own training chunks, which the run folder records
    assert got["train_bases"] == MarkovChains(0).fit(
        (Path(objects["datamodule"].corpus_dir) / "train.txt").read_text().split()).bases_fitted
    assert (tmp_path / "e" / "windows.tsv").read_text().count("\n") == 61


@pytest.mark.subprocess
@pytest.mark.parametrize(("case", "message"), [
    ("short", "no window of 500 bases without N"),
    ("not_a_model", "neither a genolm .ckpt file nor a Hugging Face folder"),
    ("no_corpus", "name the FASTA to fit the Markov chains on with baseline.fasta"),
])
def test_eval_lm_bad_input_one_line(tiny_run, tmp_path: Path, case: str, message: str) -> None:
    _, _, objects = tiny_run
    short = write_fasta(tmp_path / "short.fa", {"r1": "ACGT" * 50, "r2": "N" * 600})
    model = objects["hf_dir"]
    args = [f"fasta=[{short}]", "window=500"]
    if case == "not_a_model":
        model, args = tmp_path, [f"fasta=[{short}]"]
    elif case == "no_corpus":
        model = tmp_path / "copy"
        model.mkdir()
        for f in Path(objects["hf_dir"]).iterdir():
            (model / f.name).write_bytes(f.read_bytes())
        args = [f"fasta=[{short}]", "window=100"]
    out = tmp_path / "out"
    res = run_cli("genolm-eval-lm", f"model_path={model}", *args, f"paths.output_dir={out}")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("genolm: error:")
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (out / "metrics.json").exists() and not (out / "windows.tsv").exists()
