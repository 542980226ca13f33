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
from genolm.config_schema import Section, validate
from genolm.config_schema.renamed import apply_renames
from genolm.errors import GenolmError
from genolm.run_folder import remove_if_unused

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


Task = Callable[[DictConfig], Any]


def report_errors(schema: type[Section]) -> Callable[[Task], Task]:
    """Decorate a Hydra task: check its config first, report user errors in one line.

    * a deprecated key the schema lists in ``renamed`` (e.g. ``ckpt_path`` for ``model_path``) moves to
      its new key with one line on stderr (:func:`genolm.config_schema.renamed.apply_renames`);
    * the config is checked against ``schema`` (:func:`genolm.config_schema.validate`) before any work;
    * a :class:`GenolmError` (also one raised while Hydra instantiates an object, e.g. a model's
      ``model_path``) becomes one ``genolm: error: ...`` line and exit status 1, and the run folder
      is removed if this run created it and wrote nothing into it
      (:func:`genolm.run_folder.remove_if_unused`);
    * a run stopped by SIGTERM exits with status 143 (128 + 15), after pretraining saved ``last.ckpt``.
    """

    def decorate(func: Task) -> Task:
        @functools.wraps(func)
        def wrapper(cfg: DictConfig) -> Any:
            from hydra.errors import InstantiationException
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            # a Lightning-internal deprecation printed on every fit; nothing a user can act on
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            try:
                check_versions()
                apply_renames(cfg, getattr(schema, "renamed", {}))
                validate(cfg, schema)
                return func(cfg)
            except (GenolmError, InstantiationException) as err:
                cause = err if isinstance(err, GenolmError) else err.__cause__
                if not isinstance(cause, GenolmError):
                    raise
                remove_if_unused(_output_dir())
                print(f"genolm: error: {cause}", file=sys.stderr)
                sys.exit(1)
            except SIGTERMException:
                # pretraining has saved checkpoints/last.ckpt by now and logged how to resume
                print("genolm: stopped by SIGTERM", file=sys.stderr)
                sys.exit(143)

        return wrapper

    return decorate


def _output_dir() -> str | None:
    """The running Hydra job's output folder (``None`` outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def config_dir() -> str:
    """Absolute path of genolm's Hydra config folder (``GENOLM_CONFIG_DIR`` overrides).

    The folder ships inside the package (``genolm/conf``; in the repository a link to ``conf/``),
    so editable and regular installs find it the same way.
    """
    from genolm.run_folder import register_resolvers

    register_resolvers()  # conf/hydra/default.yaml names each process's job log with one
    env = os.environ.get("GENOLM_CONFIG_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent / "conf"
    if not (path / "pretrain.yaml").is_file():
        raise SystemExit(f"genolm: error: config folder not found at {path}; reinstall genolm "
                         "(pip install .) or set GENOLM_CONFIG_DIR to a copy of its conf/ folder")
    return str(path)
