"""Weights & Biases: one run per job, grouped by multirun, offline unless a key is configured.

``conf/logger/wandb.yaml`` instantiates :func:`wandb_logger`, which fills in what YAML cannot
know: the group (the multirun's name, so every job of a sweep lands in one W&B group), the run
name (task, run or sweep folder, job number) and the mode. :func:`finish_loggers` writes the
job's final metrics into the run summary and calls ``finish()``, so the next job of a multirun
(same Python process) starts its own run instead of appending to this one.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from genolm.errors import GenolmError

log = logging.getLogger("genolm.training.tracking")
MODES = ("online", "offline", "disabled")


def has_wandb_key() -> bool:
    """Whether an API key is configured (``WANDB_API_KEY`` or ``wandb login``'s ~/.netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None) -> str:
    """The W&B mode to use; also exported as ``WANDB_MODE`` so wandb itself agrees.

    ``requested`` (else ``WANDB_MODE``) of ``None``/``auto`` means online with a key, offline
    without. ``online`` without a key falls back to offline with a warning.
    """
    mode = requested or os.environ.get("WANDB_MODE") or "auto"
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in (*MODES, "auto"):
        raise GenolmError(f"W&B mode {mode!r}: use one of auto, {', '.join(MODES)}")
    if mode == "auto":
        mode = "online" if has_wandb_key() else "offline"
    elif mode == "online" and not has_wandb_key():
        log.warning("W&B online was requested but no API key is configured (WANDB_API_KEY or "
                    "`wandb login`): logging offline instead; upload later with `wandb sync`")
        mode = "offline"
    os.environ["WANDB_MODE"] = mode
    return mode


def hydra_run_names(task_name: str) -> tuple[str, str | None]:
    """``(run name, group)`` from Hydra: group = ``<task>-<sweep folder>`` in a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
    except (ImportError, ValueError):
        return task_name, None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep = Path(str(hydra_cfg.sweep.dir)).name
        return f"{task_name}/{sweep}/{hydra_cfg.job.num}", f"{task_name}-{sweep}"
    return f"{task_name}/{Path(hydra_cfg.runtime.output_dir).name}", None


def wandb_logger(project: str = "genolm", entity: str | None = None, name: str | None = None,
                 group: str | None = None, job_type: str | None = None, tags: Sequence[str] = (),
                 save_dir: str = ".", log_model: bool | str = False, mode: str | None = None,
                 **kwargs: Any) -> WandbLogger:
    """A Lightning ``WandbLogger`` with genolm's naming and mode rules.

    Args:
        project: W&B project.
        entity: W&B team or user (default: the key's user).
        name: run name (default ``<task>/<run folder>`` or ``<task>/<sweep>/<job>``).
        group: run group (default: the multirun's name; none for single runs).
        job_type: the entrypoint (``task_name``).
        tags: run tags.
        save_dir: folder of the local ``wandb/`` files (the run folder).
        log_model: ``False``; ``True`` logs checkpoints as artifacts at the end; ``"all"``
            every checkpoint as it is written (offline runs keep them for ``wandb sync``).
        mode: ``auto`` / ``online`` / ``offline`` / ``disabled`` (see :func:`wandb_mode`).
        **kwargs: passed on to ``wandb.init``.

    """
    auto_name, auto_group = hydra_run_names(job_type or project)
    mode = wandb_mode(mode)
    return WandbLogger(project=project, entity=entity, name=name or auto_name, group=group or auto_group,
                       job_type=job_type, tags=list(tags), save_dir=save_dir, log_model=log_model,
                       mode=mode, **kwargs)


def finish_loggers(loggers: Sequence[Any], metrics: dict[str, float] | None, is_global_zero: bool,
                   failed: bool = False) -> None:
    """Put the final ``metrics`` into each W&B run's summary and finish the run (rank 0).

    ``failed`` marks the run as failed (exit code 1), e.g. after an error or SIGTERM.
    """
    for logger in loggers:
        if not isinstance(logger, WandbLogger) or not is_global_zero:
            continue
        run = logger.experiment
        if metrics:
            run.summary.update(metrics)
        run.finish(exit_code=1 if failed else 0)
