"""Where a ``model_path`` points: a local file or folder, or a Hugging Face Hub id.

Every loader in :mod:`genolm.checkpoints` first calls :func:`resolve_model_path`: a path that
exists locally is used as is; otherwise, when it is a valid Hub id (``owner/name``), the model is
fetched (or found in the local Hub cache, e.g. with ``HF_HUB_OFFLINE=1``) with
``huggingface_hub.snapshot_download`` and its local snapshot folder is used. Every later read
is then of local files. A Hub id that cannot be fetched is one :class:`~genolm.errors.GenolmError`
line; a missing path that is no Hub id is reported by the reader
(:func:`genolm.io.model_source`: neither a ``.ckpt`` file nor a Hugging Face folder).

:func:`remote_code_kwargs` turns the config key ``trust_remote_code`` into ``from_pretrained``
keyword arguments: the keyword is passed only when the user set it to true, so models whose code
lives in their own repository (DNABERT-2, Nucleotide Transformer v2) run only on request;
:func:`check_remote_code` refuses such a model in one line before transformers would ask on
the terminal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from genolm.errors import GenolmError

log = logging.getLogger(__name__)


def remote_code_kwargs(trust_remote_code: bool = False) -> dict[str, Any]:
    """``{"trust_remote_code": True}`` when asked for, else nothing (transformers' default)."""
    return {"trust_remote_code": True} if trust_remote_code else {}


def check_remote_code(path: Path, config: dict[str, Any], trust_remote_code: bool) -> None:
    """Refuse (one line) a model that only runs with its own code unless ``trust_remote_code``.

    A folder with its own code for a model type transformers knows (DNABERT-2: ``bert``) loads
    transformers' built-in classes instead, with a warning: its weights may not fit them.
    """
    if trust_remote_code or not config.get("auto_map"):
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if config.get("model_type") not in CONFIG_MAPPING:
        raise GenolmError(f"{path}: the model ships its own code (config.json auto_map) for the model "
                          f"type {config.get('model_type')!r}; set trust_remote_code=true to run it")
    log.warning("%s ships its own model code (auto_map) but trust_remote_code is false: transformers' "
                "built-in %s classes are used, which may not fit its weights", path, config.get("model_type"))


def is_hub_id(text: str) -> bool:
    """Whether ``text`` is a syntactically valid Hugging Face Hub repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def resolve_model_path(path: str | Path) -> Path:
    """A local path for ``path``: itself when it exists, else the Hub snapshot of that id.

    Raises:
        GenolmError: ``path`` is missing locally and the Hub id cannot be fetched (offline and
            not cached, unknown repository, gated, no network).

    """
    local, text = Path(path), str(path)
    if local.exists() or local.suffix == ".ckpt" or not is_hub_id(text):
        return local  # a missing file or folder is reported by the reader (genolm.io.model_source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text))
    except Exception as err:  # noqa: BLE001 - offline, unknown, gated, network: one line each
        raise GenolmError(f"{text}: no such local path, and as a Hugging Face Hub id: "
                          f"{_hub_failure(err)}") from err


def _hub_failure(err: Exception) -> str:
    """Why a Hub download failed, in words."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(err, GatedRepoError):
        return "a gated repository: accept its terms on the Hub and log in (hf auth login)"
    if isinstance(err, RepositoryNotFoundError):
        return "no such repository on the Hub (or a private one: log in with hf auth login)"
    if isinstance(err, LocalEntryNotFoundError):
        return ("not in the local Hugging Face cache, and it cannot be downloaded here (offline, or "
                "HF_HUB_OFFLINE=1)")
    first = next((s for s in str(err).splitlines() if s.strip()), "")
    return f"{type(err).__name__}: {first.strip()[:200]}"
