"""Build the Lightning ``Trainer`` of a run: checked devices and strategy, global batch, cluster plugins.

:func:`build_trainer` is the one place where ``cfg.trainer`` becomes a Trainer. Beyond
``instantiate`` it

* rejects an unknown strategy name or more devices than the machine has, in one line;
* turns ``global_batch_size`` into ``accumulate_grad_batches`` =
  global batch / (micro batch x devices x nodes), or says why it cannot;
* writes checkpoints atomically (:class:`~genolm.training.resume.AtomicCheckpointIO`) and, inside a SLURM
  allocation, uses Lightning's ``SLURMEnvironment`` for the ranks (requeue on the preemption
  signal is :class:`~genolm.training.resume.SaveOnSigterm`'s);
* makes DDP/FSDP ranks of a Hydra **multirun** job run that one job in that job's folder.
  Lightning starts ranks 1.. by re-running ``sys.argv`` with ``hydra.run.dir=<run dir>``; in a
  multirun ``sys.argv`` holds ``-m`` and the sweep, so every extra rank would start the whole
  sweep again in new folders. :func:`hydra_rank_command` passes the job's own overrides instead,
  and :func:`job_scope` leaves no process group or rank variables behind for the next job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import FSDPStrategy, StrategyRegistry
from omegaconf import DictConfig, ListConfig

from genolm.errors import GenolmError
from genolm.training.resume import AtomicCheckpointIO
from genolm.training.tracking import finish_loggers

log = logging.getLogger("genolm.training.trainer")

# variables Lightning's launcher sets in the launching process for its ranks
_RANK_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# sys.argv options that choose the config and must reach the extra ranks too
_CONFIG_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")


def check_strategy(strategy: Any) -> None:
    """Reject strategy names Lightning does not know (instances and ``_target_`` nodes pass)."""
    if isinstance(strategy, str) and strategy != "auto" and strategy not in StrategyRegistry:
        known = ", ".join(["auto", *StrategyRegistry.available_strategies()[:12], "..."])
        raise GenolmError(f"trainer.strategy={strategy!r} is not a Lightning strategy (known: {known}); "
                          "use trainer=ddp, trainer=ddp_cpu or trainer=fsdp")


def requested_devices(devices: Any) -> int | None:
    """Device count asked for by ``trainer.devices`` (``None`` for ``auto`` / ``-1``: all)."""
    if isinstance(devices, Sequence | ListConfig) and not isinstance(devices, str):
        return len(devices)
    if str(devices) in {"auto", "-1"}:
        return None
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    return int(devices)


def check_devices(accelerator: str, devices: Any) -> None:
    """Raise when more devices are requested than this machine has."""
    wanted = requested_devices(devices)
    if accelerator in {"gpu", "cuda"}:
        available = torch.cuda.device_count()
        if available == 0:
            raise GenolmError(f"trainer.accelerator={accelerator} but no CUDA GPU is visible; "
                              "use trainer=cpu or trainer=ddp_cpu, or a CUDA build of torch")
        if wanted is not None and wanted > available:
            raise GenolmError(f"trainer.devices={wanted} but this machine has {available} GPU(s)")
    elif accelerator == "cpu" and wanted is not None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if wanted > (cores or 1):
            raise GenolmError(f"trainer.devices={wanted} CPU processes but this machine has {cores} "
                              "cores available")


def accumulation(global_batch: int, micro_batch: int, devices: int, nodes: int, configured: int = 1) -> int:
    """``accumulate_grad_batches`` that makes ``global_batch`` samples per optimizer step.

    Raises:
        GenolmError: the global batch is not a multiple of micro batch x devices x nodes, or
            ``trainer.accumulate_grad_batches`` was also set to something else.

    """
    per_pass = micro_batch * devices * nodes
    if global_batch <= 0 or global_batch % per_pass:
        raise GenolmError(
            f"global_batch_size={global_batch} is not a multiple of data.batch_size ({micro_batch}) x "
            f"devices ({devices}) x nodes ({nodes}) = {per_pass}; choose a multiple of {per_pass} "
            "or change data.batch_size")
    steps = global_batch // per_pass
    if configured not in (1, steps):
        raise GenolmError(f"global_batch_size={global_batch} needs accumulate_grad_batches={steps}, but "
                          f"trainer.accumulate_grad_batches={configured} is set; set only one of them")
    return steps


def hydra_rank_command(local_rank: int) -> tuple[list[str], str]:
    """Command and folder for DDP rank ``local_rank`` of the current Hydra job (run or multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg in _CONFIG_FLAGS and i + 1 < len(argv):
            command += [arg, argv[i + 1]]
        elif arg.startswith(tuple(f"{flag}=" for flag in _CONFIG_FLAGS)):
            command.append(arg)
    command += list(hydra_cfg.overrides.task)
    command += [f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
                f"hydra.job.name=train_ddp_process_{local_rank}", "hydra.output_subdir=null",
                "hydra.mode=RUN"]
    return command, get_original_cwd()


def _use_job_command_for_ranks() -> None:
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = hydra_rank_command


@contextlib.contextmanager
def job_scope(trainer: L.Trainer) -> Iterator[dict[str, float]]:
    """Wrap one job's fit/test; yields a dict the caller fills with the job's final metrics.

    On exit (also on errors and SIGTERM) the W&B runs get those metrics as their summary and are
    finished, the process group is destroyed and the rank variables are restored. Without this
    the next job of a multirun (same process) would reuse the finished job's W&B run and process
    group, and Lightning would read the leftover ``LOCAL_RANK`` as "ranks are started externally"
    and never start the new job's ranks.
    """
    saved = {name: os.environ.get(name) for name in _RANK_ENV}
    final: dict[str, float] = {}
    try:
        yield final
    finally:
        finish_loggers(trainer.loggers, final, trainer.is_global_zero, failed=sys.exc_info()[0] is not None)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fsdp_strategy(wrap_layers: Sequence[str] = (), activation_checkpointing: bool = False,
                  **kwargs: Any) -> FSDPStrategy:
    """Lightning ``FSDPStrategy`` that shards (and optionally recomputes) each ``wrap_layers`` module.

    Args:
        wrap_layers: import paths of the layer classes to wrap, e.g. the Mixtral decoder layer.
        activation_checkpointing: recompute those layers' activations in the backward pass.
        **kwargs: passed to ``FSDPStrategy`` (``sharding_strategy``, ``state_dict_type``, ...).

    """
    from hydra.utils import get_class

    policy = {get_class(name) for name in wrap_layers} or None
    return FSDPStrategy(auto_wrap_policy=policy,
                        activation_checkpointing_policy=policy if activation_checkpointing else None,
                        **kwargs)


def build_trainer(cfg: DictConfig, callbacks: Sequence[Any] = (), loggers: Sequence[Any] = (),
                  micro_batch: int | None = None) -> L.Trainer:
    """Instantiate ``cfg.trainer`` with genolm's checks and plugins.

    Args:
        cfg: the run config (``trainer``, optional ``global_batch_size``).
        callbacks: Lightning callbacks.
        loggers: Lightning loggers (none: no logger).
        micro_batch: per-device training batch, needed when ``global_batch_size`` is set.

    """
    check_strategy(cfg.trainer.get("strategy", "auto"))
    check_devices(str(cfg.trainer.get("accelerator", "auto")), cfg.trainer.get("devices", "auto"))
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # ranks from SLURM; requeue on SIGUSR1 is genolm's (SaveOnSigterm: stop at a batch, save,
        # scontrol requeue) instead of Lightning's checkpoint from inside the signal handler
        plugins.append(SLURMEnvironment(auto_requeue=False))
    try:
        trainer = instantiate(cfg.trainer, callbacks=list(callbacks), logger=list(loggers) or False,
                              plugins=plugins)
    except (MisconfigurationException, ValueError) as err:
        raise GenolmError(f"trainer: {err}") from err
    global_batch = cfg.get("global_batch_size")
    if global_batch and micro_batch:
        trainer.accumulate_grad_batches = accumulation(
            int(global_batch), micro_batch, trainer.num_devices, trainer.num_nodes,
            int(cfg.trainer.get("accumulate_grad_batches", 1)))
        log.info("global batch %d = %d per device x %d device(s) x %d node(s) x %d accumulation",
                 global_batch, micro_batch, trainer.num_devices, trainer.num_nodes,
                 trainer.accumulate_grad_batches)
    _use_job_command_for_ranks()
    return trainer
