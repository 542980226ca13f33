"""Versions of the dependencies whose private APIs genolm uses, checked before any work.

genolm reaches into a few private corners: Lightning's ``_hydra_subprocess_cmd`` and
``_signal_connector`` (DDP under Hydra, SIGTERM checkpoints), transformers'
``_CAN_RECORD_REGISTRY`` (router logits in spawned workers) and the tokenizers backend's cache
(memory-flat token caches). A release can change those without notice, so each entrypoint checks
that the installed versions lie in the ranges the test suite ran on (``constraints.txt`` pins the
exact versions CI installs). ``GENOLM_ALLOW_UNTESTED=1`` runs anyway, with a warning.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import PackageNotFoundError, version

from genolm.errors import GenolmError

log = logging.getLogger(__name__)

# package -> (lowest tested, first untested): keep in step with pyproject.toml's bounds
TESTED: dict[str, tuple[str, str]] = {
    "transformers": ("5.24", "5.25"),
    "lightning": ("2.6", "2.7"),
    "tokenizers": ("0.23", "0.24"),
}


def _key(text: str) -> tuple[int, ...]:
    """Numeric release tuple of a version string (``5.24.0.dev0`` -> ``(5, 24, 0)``)."""
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def untested_versions(installed: dict[str, str] | None = None) -> list[str]:
    """``name version (tested: >=lo,<hi)`` for every installed package outside its tested range."""
    found = []
    for name, (low, high) in TESTED.items():
        if installed is not None:
            current = installed.get(name)
        else:
            try:
                current = version(name)
            except PackageNotFoundError:
                current = None
        if current is None:
            found.append(f"{name} not installed (tested: >={low},<{high})")
        elif not _key(low) <= _key(current) < _key(high):
            found.append(f"{name} {current} (tested: >={low},<{high})")
    return found


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Raise one :class:`GenolmError` naming every untested version (or warn when allowed)."""
    found = untested_versions(installed)
    if not found:
        return
    message = ("untested dependency versions: " + "; ".join(found)
               + ". Install the tested ones with `pip install -c constraints.txt -e .` "
               "or set GENOLM_ALLOW_UNTESTED=1 to run anyway")
    if os.environ.get("GENOLM_ALLOW_UNTESTED") == "1":
        log.warning(message)
        return
    raise GenolmError(message)
