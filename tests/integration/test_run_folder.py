"""One run per folder: unique names, a live lock, refused re-use, resume in place only when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DATA, compose_cfg, run_cli, tiny_overrides
from omegaconf import OmegaConf

from genolm import run_folder
from genolm.errors import GenolmError
from genolm.pipelines.pretrain import train as pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

HOLDER = """
import sys
from genolm.run_folder import claim
claim(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def _holder(folder: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A process that claims ``folder`` and keeps it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


@pytest.fixture(autouse=True)
def _no_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SUBMITIT_LOCAL_JOB_ID",
                "LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.subprocess
def test_a_live_run_holds_its_folder_and_an_ended_one_is_not_reused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    proc = _holder(folder)
    with pytest.raises(GenolmError, match=rf"in use by a live run \(pid {proc.pid} on "):
        run_folder.claim(folder)
    _release(proc)
    with pytest.raises(GenolmError, match="already holds a run"):
        run_folder.claim(folder)
    assert run_folder.claim(folder, resume=True) is False  # asked to continue it: allowed
    assert json.loads((folder / ".genolm" / "run.json").read_text())["pid"] == os.getpid()


@pytest.mark.subprocess
def test_the_same_scheduler_job_may_rerun_in_its_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "run"
    _release(_holder(folder, {"SLURM_JOB_ID": "77"}))
    monkeypatch.setenv("SLURM_JOB_ID", "78")
    with pytest.raises(GenolmError, match="already holds a run"):
        run_folder.claim(folder)
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # the requeued job
    assert run_folder.claim(folder) is False


def test_extra_ddp_ranks_do_not_claim(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert run_folder.claim(tmp_path / "run") is False
    assert not (tmp_path / "run").exists()


def test_release_removes_only_bookkeeping_folders(tmp_path: Path) -> None:
    empty, used = tmp_path / "logs" / "t" / "runs" / "a", tmp_path / "keep" / "b"
    for folder in (empty, used):
        (folder / ".hydra").mkdir(parents=True)
        (folder / "t.log").write_text("log\n")
    (used / "metrics.json").write_text("{}")
    assert run_folder.release_if_empty(empty) and not (tmp_path / "logs").exists()
    assert not run_folder.release_if_empty(used) and (used / "metrics.json").is_file()


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny causal LM as a Hugging Face folder."""
    root = tmp_path_factory.mktemp("lm")
    _, objects = pretrain(compose_cfg("pretrain", tiny_overrides(root / "run", root / "cache") + [
        "trainer.max_steps=2", "baseline.enabled=false"]))
    return objects["hf_dir"]


@pytest.mark.subprocess
def test_runs_started_together_get_their_own_folders(lm: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "genolm-generate"
    args = [f"model_path={lm}", "n=4", "length=30", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}"]
    procs = [subprocess.Popen([str(exe), *args, f"seed={seed}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    folders = sorted((tmp_path / "logs" / "generate" / "runs").iterdir())
    assert len(folders) == 2
    seeds = {OmegaConf.load(f / ".hydra" / "config.yaml").seed for f in folders}
    assert seeds == {1, 2} and all(len(list(f.glob("*.fa"))) == 1 for f in folders)


@pytest.mark.subprocess
def test_pretrain_rerun_in_a_used_folder_is_refused_unless_resuming(tmp_path: Path, cache_dir: Path) -> None:
    run = tmp_path / "logs" / "pretrain" / "runs" / "mine"
    base = [o for o in tiny_overrides(tmp_path, cache_dir) if not o.startswith("paths.output_dir")] + [
        f"paths.root_dir={tmp_path}", f"hydra.run.dir={run}", "baseline.enabled=false"]
    first = run_cli("genolm-pretrain", *base, "trainer.max_steps=3")
    assert first.returncode == 0, first.stderr[-3000:]
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    hf_config = (run / "hf" / "config.json").stat().st_mtime_ns

    again = run_cli("genolm-pretrain", *base, "trainer.max_steps=6")
    assert again.returncode == 1
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith(f"genolm: error: {run}: folder already holds a run")
    assert (run / ".hydra" / "overrides.yaml").read_text() == overrides  # nothing of the new run written
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 3

    resumed = run_cli("genolm-pretrain", *base, "trainer.max_steps=6", "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and metrics["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    assert (run / "hf" / "config.json").stat().st_mtime_ns != hf_config  # the export was replaced
    assert not [p for p in run.iterdir() if ".old-" in p.name or ".tmp-" in p.name]


@pytest.mark.subprocess
def test_a_cli_run_refuses_a_folder_another_live_run_holds(lm: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    proc = _holder(folder)
    try:
        res = run_cli("genolm-generate", f"model_path={lm}", "n=2", "length=20", f"hydra.run.dir={folder}",
                      f"paths.data_dir={DATA}")
    finally:
        _release(proc)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"genolm: error: {folder}: run folder in use by a live run "
        f"(pid {proc.pid} on {os.uname().nodename}); "
        "wait for it to end or choose another hydra.run.dir")
    assert sorted(p.name for p in folder.iterdir()) == [".genolm"]
