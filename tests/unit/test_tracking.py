"""W&B mode fallback and the SLURM launcher config (real multiruns and sweeps: tests/integration)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from helpers import REPO, compose_cfg
from omegaconf import OmegaConf

from genolm.errors import GenolmError
from genolm.training.tracking import wandb_mode


def test_wandb_mode_online_without_key_falls_back_to_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")  # restored afterwards: wandb_mode() exports its choice
    with caplog.at_level(logging.WARNING, logger="genolm.training.tracking"):
        assert wandb_mode("online") == "offline"
    assert "no API key is configured" in caplog.text
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("online") == "online" and wandb_mode("auto") == "online"
    with pytest.raises(GenolmError, match="W&B mode 'loud'"):
        wandb_mode("loud")


def test_slurm_launcher_config_composes() -> None:
    cfg = compose_cfg("pretrain", ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                                   "trainer.num_nodes=2", "hydra.launcher.partition=gpu",
                                   "hydra.launcher.account=genomics", "hydra.launcher.timeout_min=600"],
                      hydra=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert {k: launcher[k] for k in ("partition", "account", "nodes", "gpus_per_node", "tasks_per_node",
                                     "timeout_min", "signal_delay_s")} == {
        "partition": "gpu", "account": "genomics", "nodes": 2, "gpus_per_node": 4, "tasks_per_node": 4,
        "timeout_min": 600, "signal_delay_s": 120}


def test_sbatch_example_overrides_compose() -> None:
    text = (REPO / "experiments" / "slurm" / "pretrain.sbatch").read_text()
    assert "--signal=SIGUSR1@120" in text and "--requeue" in text
    command = text[text.index("srun genolm-pretrain"):].replace("\\\n", " ").split()[2:]
    env = {"${SLURM_NTASKS_PER_NODE}": "4", "${SLURM_JOB_NUM_NODES}": "2", "${SLURM_JOB_ID}": "77"}
    overrides = []
    for arg in command:
        if arg.startswith("hydra.") or arg == '"$@"':
            continue
        for name, value in env.items():
            arg = arg.replace(name, value)
        overrides.append(arg.replace('"', ""))
    cfg = compose_cfg("pretrain", overrides)
    assert cfg.trainer.strategy == "ddp" and cfg.logger.wandb.id == "slurm-77"
    from genolm.training.trainer import accumulation

    assert accumulation(cfg.global_batch_size, cfg.data.batch_size, cfg.trainer.devices,
                        cfg.trainer.num_nodes) == 2


def test_slurm_launcher_params_make_a_valid_sbatch_script(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the sbatch script exactly as hydra-submitit-launcher would (nothing is submitted)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    # submitit refuses to build a SLURM executor without `srun` on PATH; this stub is never run
    (tmp_path / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    cfg = compose_cfg("pretrain", ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                                   "trainer.num_nodes=2", "hydra.launcher.partition=gpu",
                                   "hydra.launcher.account=genomics", f"hydra.sweep.dir={tmp_path}"],
                      hydra=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m genolm", "uid")
    for line in ("--partition=gpu", "--account=genomics", "--nodes=2", "--gpus-per-node=4",
                 "--ntasks-per-node=4", "--time=240", "--signal=USR2@120", "--cpus-per-task=8"):
        assert f"#SBATCH {line}\n" in script, line
