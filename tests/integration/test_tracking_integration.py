"""W&B across a real multirun (offline) and a real submitit sweep (the config half: tests/unit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, tiny_overrides
from wandb_records import read_run, records

from genolm.pipelines.pretrain import train


def _sweep_overrides(root: Path, cache: Path) -> list[str]:
    return [o for o in tiny_overrides(root, cache) if not o.startswith("paths.output_dir")] + [
        f"paths.root_dir={root}", "trainer.max_steps=3", "trainer.limit_val_batches=2", "export_hf=false"]


def _jobs(root: Path) -> list[Path]:
    (sweep,) = (root / "logs" / "pretrain" / "multiruns").iterdir()
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.subprocess
def test_wandb_multirun_gives_one_offline_run_per_job(tmp_path: Path, cache_dir: Path) -> None:
    res = run_cli("genolm-pretrain", "-m", *_sweep_overrides(tmp_path, cache_dir), "logger=wandb",
                  "tags=[ci,scale]", "model.optimizer.lr=2e-3,3e-3",
                  env={"HOME": str(tmp_path), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(tmp_path)
    assert [j.name for j in jobs] == ["0", "1"]
    runs = []
    for job in jobs:
        (run_file,) = (job / "wandb").glob("offline-run-*/run-*.wandb")
        run = read_run(run_file)
        metrics = json.loads((job / "metrics.json").read_text())["metrics"]
        for key in ("val/loss", "val/ppl", "train/loss"):
            assert run["summary"][key] == pytest.approx(metrics[key]), key
        sweep = job.parent.name
        assert run["group"] == f"pretrain-{sweep}" and run["job_type"] == "pretrain"
        assert run["name"] == f"pretrain/{sweep}/{job.name}" and run["tags"] == ["ci", "scale"]
        assert run["config"]["model"]["optimizer"]["lr"] == float(f"{2 + int(job.name)}e-3")
        assert run["config"]["paths"]["output_dir"] == str(job)  # the resolved config
        runs.append(run["id"])
    assert len(set(runs)) == 2


@pytest.mark.subprocess
def test_submitit_local_runs_a_two_job_sweep(tmp_path: Path, cache_dir: Path) -> None:
    res = run_cli("genolm-pretrain", "-m", "hydra/launcher=submitit_local",
                  *_sweep_overrides(tmp_path, cache_dir), "logger=csv", "model.optimizer.lr=2e-3,3e-3",
                  env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(tmp_path)
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["global_step"] == 3
    assert len(list((jobs[0].parent / ".submitit").glob("*/*_result.pkl"))) == 2  # two submitit jobs
    assert (jobs[0].parent / "summary.csv").is_file()


@pytest.mark.fit
def test_wandb_checkpoint_artifacts_offline(tiny_cfg, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = tiny_cfg("trainer.max_steps=2", "logger=wandb", "logger.wandb.log_model=true", "export_hf=false")
    train(cfg)
    (run_file,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*/run-*.wandb")
    artifacts = [r.artifact for r in records(run_file) if r.WhichOneof("record_type") == "artifact"]
    assert artifacts and all(a.type == "model" for a in artifacts)
    assert {m.path for a in artifacts for m in a.manifest.contents} == {"model.ckpt"}
