"""Crash-safe resume: SIGKILL and SIGTERM mid-run, atomic checkpoints, ckpt_path=last, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import compose_cfg, run_cli, tiny_overrides

from genolm.errors import GenolmError
from genolm.pipelines.pretrain import train
from genolm.training.resume import AtomicCheckpointIO, resolve_ckpt_path

# constant learning rate: a run's trajectory must not depend on its max_steps (the killed run
# is given far more steps than the runs it is compared with)
RESUMABLE = ["model.scheduler.decay=constant", "model.scheduler.warmup_ratio=0", "model.optimizer.lr=3e-3",
             "callbacks.periodic_checkpoint.every_n_train_steps=5", "trainer.val_check_interval=10",
             "export_hf=false"]


pytestmark = pytest.mark.usefixtures("one_thread")
_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    """A failed test must not leave training processes (and their DDP ranks) spinning."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _popen(args: list[str], stderr: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start ``args`` in its own process group (stderr to a file), killed after the test."""
    with open(stderr, "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **env},
                                start_new_session=True)
    _STARTED.append(proc)
    return proc


def _cli_overrides(root: Path, cache: Path) -> list[str]:
    return [o for o in tiny_overrides(root, cache) if not o.startswith("paths.output_dir")] + [
        f"paths.root_dir={root}", *RESUMABLE]


def _start(root: Path, cache: Path, *extra: str) -> subprocess.Popen:
    """Start a long pretraining run (stderr in ``root/stderr.txt``)."""
    exe = Path(sys.executable).parent / "genolm-pretrain"
    root.mkdir(parents=True, exist_ok=True)
    return _popen([str(exe), *_cli_overrides(root, cache), *extra], root / "stderr.txt",
                  {"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"})


def _first_last_ckpt(root: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    """Wait until the run's first ``checkpoints/last.ckpt`` exists; return it."""
    deadline = time.monotonic() + timeout
    while True:
        found = list((root / "logs" / "pretrain" / "runs").glob("*/checkpoints/last.ckpt"))
        if found:
            return found[0]
        assert proc.poll() is None, (root / "stderr.txt").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.mark.subprocess
def test_sigkill_then_ckpt_path_last_matches_uninterrupted_run(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "killed"
    proc = _start(root, cache_dir, "trainer.max_steps=100000")
    last = _first_last_ckpt(root, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    saved = torch.load(last, weights_only=False)  # atomic writes: never a truncated file
    assert 5 <= saved["global_step"] < 30 and saved["global_step"] % 5 == 0
    assert saved["GenomeChunksDataModule"]["consumed"] == saved["global_step"] * 16

    res = run_cli("genolm-pretrain", *_cli_overrides(root, cache_dir), "trainer.max_steps=30",
                  "ckpt_path=last", env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    resumed_dir = max((root / "logs" / "pretrain" / "runs").iterdir())
    resumed = json.loads((resumed_dir / "metrics.json").read_text())
    assert resumed["resumed_from"] == str(last) and resumed["global_step"] == 30

    reference, _ = train(_compose(tmp_path / "reference", cache_dir, "trainer.max_steps=30"))
    for key in ("val/loss", "train/loss"):
        # same data order from the saved sampler position: equal to float precision (without the
        # position restored, val/loss differs by ~5e-3 here)
        assert resumed["metrics"][key] == pytest.approx(reference[key], abs=1e-5), key


def _compose(out: Path, cache: Path, *extra: str):
    return compose_cfg("pretrain", tiny_overrides(out, cache) + RESUMABLE + list(extra))


@pytest.mark.subprocess
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path: Path, cache_dir: Path) -> None:
    """With 4 micro-batches per optimizer step the stop waits for the end of the window."""
    proc = _start(tmp_path, cache_dir, "trainer.max_steps=100000", "global_batch_size=64")
    last = _first_last_ckpt(tmp_path, proc)
    time.sleep(1.0)  # let it run past the periodic checkpoint
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err.strip().splitlines()[-1]
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] >= 5
    assert saved["GenomeChunksDataModule"]["consumed"] == saved["global_step"] * 64


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full")


def test_atomic_checkpoint_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(1000)}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"global_step": 2, "w": torch.ones(1000), "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=False)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left


def test_ckpt_path_resolution(tmp_path: Path) -> None:
    task = tmp_path / "logs" / "pretrain"
    own = task / "runs" / "b"
    assert resolve_ckpt_path(None, own, task) is None
    with pytest.raises(GenolmError, match="ckpt_path=last: no checkpoints/last.ckpt under"):
        resolve_ckpt_path("last", own, task)
    with pytest.raises(GenolmError, match="missing.ckpt: checkpoint to resume from not found"):
        resolve_ckpt_path(str(tmp_path / "missing.ckpt"), own, task)
    older, newer = task / "runs" / "a" / "checkpoints" / "last.ckpt", task / "multiruns" / "x" / "0" / \
        "checkpoints" / "last.ckpt"
    for i, path in enumerate((older, newer)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
    assert resolve_ckpt_path("last", own, task) == str(newer)
    (own / "checkpoints").mkdir(parents=True)
    (own / "checkpoints" / "last.ckpt").write_bytes(b"x")
    os.utime(own / "checkpoints" / "last.ckpt", (10, 10))
    # a requeued job resumes its own folder's checkpoint, with or without ckpt_path=last
    assert resolve_ckpt_path(None, own, task) == resolve_ckpt_path("last", own, task) == \
        str(own / "checkpoints" / "last.ckpt")


@pytest.mark.subprocess
def test_resume_from_another_model_shape_is_one_clear_error(tiny_cfg, tmp_path: Path,
                                                            cache_dir: Path) -> None:
    _, objects = train(tiny_cfg("trainer.max_steps=2", "export_hf=false"))
    last = Path(objects["best_ckpt"]).with_name("last.ckpt")
    cfg = tiny_cfg("trainer.max_steps=4", f"ckpt_path={last}", "model.arch.hidden_size=64",
                   f"paths.output_dir={tmp_path / 'other'}")
    with pytest.raises(GenolmError, match=r"checkpoint of a different model shape .*hidden_size 32 -> 64"):
        train(cfg)
    res = run_cli("genolm-pretrain", *tiny_overrides(tmp_path / "cli", cache_dir),
                  f"ckpt_path={last}", "model.arch.num_hidden_layers=3")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith(f"genolm: error: {last}: checkpoint of a different")


@pytest.mark.fit
def test_same_seed_same_metrics(tiny_cfg, tmp_path: Path) -> None:
    first, _ = train(tiny_cfg("trainer.max_steps=8", "export_hf=false"))
    again, _ = train(tiny_cfg("trainer.max_steps=8", "export_hf=false", f"paths.output_dir={tmp_path / 'b'}"))
    other, _ = train(tiny_cfg("trainer.max_steps=8", "export_hf=false", "seed=7",
                              f"paths.output_dir={tmp_path / 'c'}"))
    timing = {k for k in first if k.endswith("_per_s")}
    assert {k: v for k, v in first.items() if k not in timing} == \
        {k: v for k, v in again.items() if k not in timing}
    assert other["val/loss"] != first["val/loss"]


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the submitit task through /proc")
def test_submitit_preemption_saves_requeues_and_resumes_in_place(tmp_path: Path, cache_dir: Path) -> None:
    """USR2 (submitit's timeout/preemption signal) -> stop at a batch, save, requeue, resume, finish."""
    exe = Path(sys.executable).parent / "genolm-pretrain"
    proc = _popen([str(exe), "-m", "hydra/launcher=submitit_local", *_cli_overrides(tmp_path, cache_dir),
                   "trainer.max_steps=150", "seed=42"], tmp_path / "stderr.txt",
                  {"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not (found := list(tmp_path.glob("logs/pretrain/multiruns/*/0/checkpoints/last.ckpt"))):
        assert proc.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "stderr.txt").read_text()[-3000:]
        time.sleep(0.02)
    job = found[0].parents[1]
    (controller,) = [int(p.name) for p in (job.parent / ".submitit").iterdir() if p.name.isdigit()]
    (task,) = _children(controller)
    os.kill(task, signal.SIGUSR2)
    assert proc.wait(timeout=300) == 0, (tmp_path / "stderr.txt").read_text()[-3000:]

    log = (job / "pretrain.log").read_text()
    assert "stopping at the next batch" in log and "resuming in place from" in log
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(job / "checkpoints" / "last.ckpt") and metrics["global_step"] == 150
    reference, _ = train(_compose(tmp_path / "reference", cache_dir, "trainer.max_steps=150"))
    assert metrics["metrics"]["val/loss"] == pytest.approx(reference["val/loss"], abs=1e-5)


@pytest.mark.subprocess
def test_ddp_sigterm_then_resume_matches_uninterrupted_ddp(tmp_path: Path, cache_dir: Path) -> None:
    """2 ranks: SIGTERM to rank 0 stops both at the same step and rank 0 saves; the resumed 2-rank
    run ends exactly where an uninterrupted 2-rank run ends."""
    ddp = ["trainer=ddp_cpu", "global_batch_size=32"]
    proc = _start(tmp_path / "ddp", cache_dir, *ddp, "trainer.max_steps=100000")
    last = _first_last_ckpt(tmp_path / "ddp", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, (tmp_path / "ddp" / "stderr.txt").read_text()[-3000:]
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] < 40
    assert saved["GenomeChunksDataModule"]["consumed"] == saved["global_step"] * 16 * 2
    finals = []
    for root, extra in ((tmp_path / "ddp", ["ckpt_path=last"]), (tmp_path / "reference", [])):
        res = run_cli("genolm-pretrain", *_cli_overrides(root, cache_dir), *ddp, "trainer.max_steps=40",
                      *extra, env={"OMP_NUM_THREADS": "1"})
        assert res.returncode == 0, res.stderr[-3000:]
        finals.append(json.loads((max((root / "logs" / "pretrain" / "runs").iterdir()) /
                                  "metrics.json").read_text()))
    resumed, reference = finals
    assert resumed["resumed_from"] == str(last) and resumed["global_step"] == reference["global_step"] == 40
    for key in ("val/loss", "train/loss"):
        assert resumed["metrics"][key] == pytest.approx(reference["metrics"][key], abs=1e-5), key


@pytest.mark.subprocess
def test_ddp_sigterm_to_rank_1_alone_stops_every_rank_together(tmp_path: Path, cache_dir: Path) -> None:
    """Only the second rank is signalled. (With Lightning's own handler that rank stops on its own
    and rank 0 waits in the next all-reduce for ever.)"""
    proc = _start(tmp_path, cache_dir, "trainer=ddp_cpu", "global_batch_size=32", "trainer.max_steps=100000")
    last = _first_last_ckpt(tmp_path, proc)
    (rank1,) = [pid for pid in _children(proc.pid)
                if "genolm-pretrain" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    os.kill(rank1, signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, (tmp_path / "stderr.txt").read_text()[-3000:]
    saved = torch.load(last, weights_only=False)
    assert saved["GenomeChunksDataModule"]["consumed"] == saved["global_step"] * 16 * 2
    log = (last.parents[1] / "pretrain.log").read_text()
    assert f"stopped at step {saved['global_step']}: saved" in log


@pytest.mark.subprocess
def test_slurm_sigusr1_saves_requeues_and_the_rerun_resumes_in_place(tmp_path: Path, cache_dir: Path) -> None:
    """The sbatch flow outside a cluster: SLURM variables, a stub `scontrol` that records its call."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/scontrol.txt\n')
    (stub / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "genolm", "SLURM_NTASKS": "1", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1",
             "SLURM_NODELIST": "localhost", "PATH": f"{stub}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "logs" / "pretrain" / "slurm" / "4242"
    args = [*_cli_overrides(tmp_path, cache_dir), "trainer.max_steps=150", f"hydra.run.dir={run_dir}"]
    exe = Path(sys.executable).parent / "genolm-pretrain"
    proc = _popen([str(exe), *args], tmp_path / "stderr.txt", {"HYDRA_FULL_ERROR": "0", **slurm})
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "stderr.txt").read_text()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=120) == 143, (tmp_path / "stderr.txt").read_text()[-3000:]
    assert (tmp_path / "scontrol.txt").read_text().split() == ["requeue", "4242"]
    assert 5 <= torch.load(last, weights_only=False)["global_step"] < 150

    res = run_cli("genolm-pretrain", *args, env=slurm)  # the requeued job: same id, same folder
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(last) and metrics["global_step"] == 150
    reference, _ = train(_compose(tmp_path / "reference", cache_dir, "trainer.max_steps=150"))
    assert metrics["metrics"]["val/loss"] == pytest.approx(reference["val/loss"], abs=1e-5)
