"""Helpers shared by the Hydra entrypoints: loggers, callbacks, error and signal reports."""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genolm.compat import check_versions
from genolm.errors import GenolmError

log = logging.getLogger("genolm")


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a ``callbacks`` or ``logger`` config group."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def instantiate_loggers(group: DictConfig | None, cfg: DictConfig) -> list[Any]:
    """Instantiate loggers and record the fully resolved config as their hyperparameters."""
    loggers = instantiate_group(group)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(resolved)
    return loggers


def to_floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Convert a Lightning metrics dict (tensors) to plain floats."""
    return {k: float(v) for k, v in metrics.items()}


def report_errors(func: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Turn a :class:`GenolmError` into one ``genolm: error: ...`` line and exit status 1.

    A :class:`GenolmError` raised while Hydra instantiates an object (e.g. a model's ``init_from``)
    is reported the same way, without Hydra's wrapping.

    A run stopped by SIGTERM exits with status 143 (128 + 15), after pretraining saved ``last.ckpt``.
    """

    @functools.wraps(func)
    def wrapper(cfg: DictConfig) -> Any:
        from hydra.errors import InstantiationException
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # a Lightning-internal deprecation printed on every fit; nothing a user can act on
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        try:
            check_versions()
            return func(cfg)
        except (GenolmError, InstantiationException) as err:
            cause = err if isinstance(err, GenolmError) else err.__cause__
            if not isinstance(cause, GenolmError):
                raise
            print(f"genolm: error: {cause}", file=sys.stderr)
            sys.exit(1)
        except SIGTERMException:
            # pretraining has saved checkpoints/last.ckpt by now and logged how to resume
            print("genolm: stopped by SIGTERM", file=sys.stderr)
            sys.exit(143)

    return wrapper


def config_dir() -> str:
    """Absolute path of the project's ``conf/`` folder (``GENOLM_CONFIG_DIR`` overrides)."""
    env = os.environ.get("GENOLM_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / "pretrain.yaml").is_file():
        raise SystemExit(f"genolm: error: config folder not found at {path}; install genolm "
                         "from its repository with `pip install -e .` or set GENOLM_CONFIG_DIR")
    return str(path)
