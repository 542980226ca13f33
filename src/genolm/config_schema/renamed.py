"""Deprecated config keys, kept working for one release.

Every entrypoint that loads a model names it ``model_path`` (``naturalness.model_path`` for the
optimizer's LM term); ``ckpt_path`` only means "resume from" (``genolm-pretrain``). The old names
stay in the YAML files as ``null`` so Hydra still accepts them on the command line, and
:func:`apply_renames` (called by :func:`genolm.utils.report_errors` before validation) moves a value
given under an old name to its new key, printing one line per old name used.

The ``data`` config group became ``corpus`` (pretraining corpora) and ``task`` (labelled tasks); as
``data`` is still a config key, Hydra reads an old ``data=tf0`` as a value, which
:func:`apply_renames` reports with the group to use instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from genolm.errors import GenolmError
from genolm.run_folder import is_extra_rank

# old key -> new key, per entrypoint (the schemas' ``renamed``)
MODEL_PATH = {"ckpt_path": "model_path"}
FINETUNE = {"model.init_from": "model_path"}
OPTIMIZE = {"oracle.ckpt_path": "model_path", "naturalness.lm_path": "naturalness.model_path"}


def _is_set(cfg: DictConfig, key: str) -> bool:
    """Whether ``key`` exists in ``cfg`` with a value (not ``null``, not ``???``)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig) or leaf not in node or OmegaConf.is_missing(node, leaf):
        return False
    return node[leaf] is not None


def apply_renames(cfg: DictConfig, renames: Mapping[str, str]) -> list[str]:
    """Move each deprecated key's value in ``cfg`` to its new key; the old key becomes ``null``.

    Prints ``genolm: 'old' is deprecated, use 'new'`` to stderr once for each old key given.

    Args:
        cfg: the composed config (changed in place).
        renames: old key -> new key (dotted paths).

    Returns:
        The old keys that were given.

    Raises:
        GenolmError: an old key and its new key are both given, with different values; or ``data``
            was given a value (the old ``data=<option>`` of the split group).

    """
    data = cfg.get("data")
    if data is not None and not isinstance(data, DictConfig):
        raise GenolmError(f"config: data={data}: the data group was split; give task={data} "
                          f"(genolm-finetune, genolm-eval) or corpus={data} (genolm-pretrain)")
    used = []
    for old, new in renames.items():
        if not _is_set(cfg, old):
            continue
        value = OmegaConf.select(cfg, old)
        if _is_set(cfg, new) and str(OmegaConf.select(cfg, new)) != str(value):
            raise GenolmError(f"config: both {new}={OmegaConf.select(cfg, new)} and its deprecated name "
                              f"{old}={value} are given; give only {new}")
        OmegaConf.update(cfg, new, value, merge=False)
        OmegaConf.update(cfg, old, None, merge=False)
        used.append(old)
        if not is_extra_rank():  # other DDP/SLURM ranks re-run the command
            print(f"genolm: '{old}' is deprecated, use '{new}'", file=sys.stderr)
    return used
