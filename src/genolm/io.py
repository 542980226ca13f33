"""Small file-system helpers: atomic outputs and content fingerprints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genolm.errors import GenolmError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("genolm.io")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Return the hex SHA-256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_source(path: str | Path) -> str:
    """``"ckpt"`` for a genolm Lightning checkpoint file, ``"hf"`` for a Hugging Face model folder.

    Raises:
        GenolmError: the ``.ckpt`` file is missing, or ``path`` is neither.

    """
    path = Path(path)
    if path.suffix == ".ckpt":
        if not path.is_file():
            raise GenolmError(f"{path}: checkpoint not found")
        return "ckpt"
    if (path / "config.json").is_file():
        return "hf"
    raise GenolmError(f"{path}: neither a genolm .ckpt file nor a Hugging Face folder with config.json")


def fingerprint(obj: Any) -> str:
    """Return a stable SHA-256 of a JSON-serialisable object."""
    return sha256_text(json.dumps(obj, sort_keys=True, default=str))


def _host() -> str:
    """Host name as written into temporary names (no path separators)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _temp_prefix(name: str) -> str:
    return f".{name}.tmp-{_host()}-"


def temp_path(final: str | Path) -> Path:
    """A fresh hidden sibling of ``final`` named ``.{name}.tmp-{host}-{pid}-{random}``.

    The host and process id say who owns it, so :func:`remove_stale_temps` can tell a
    temporary of a killed process from one still being written.
    """
    final = Path(final)
    return final.with_name(f"{_temp_prefix(final.name)}{os.getpid()}-{secrets.token_hex(4)}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; not a process id
        return True
    return True


def remove_stale_temps(final: str | Path) -> list[Path]:
    """Remove temporaries of ``final`` (see :func:`temp_path`) whose process died on this host.

    Those of live processes (a build in progress) and of other hosts (a shared file system,
    where no process id can be checked) are kept.

    Returns:
        The removed paths.

    """
    final = Path(final)
    owned = re.compile(re.escape(_temp_prefix(final.name)) + r"(\d+)-[0-9a-f]+")
    try:
        entries = list(os.scandir(final.parent))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        match = owned.fullmatch(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        log.info("removed %s, left by dead process %s", entry.path, match.group(1))
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only if the block succeeds.

    The temporary directory sits beside ``final`` (same file system) so the closing
    rename is atomic. If another process created ``final`` first, its copy is kept and
    ours is discarded, so concurrent ranks of one job converge on one directory.
    On error nothing is left behind; what a killed process left is removed by the next
    call for the same ``final`` (:func:`remove_stale_temps`). The directory gets the
    permissions of a plain ``mkdir`` (``0o777`` less the umask).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    tmp = temp_path(final)
    tmp.mkdir()  # unlike tempfile.mkdtemp's 0o700, the umask decides
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it only if the block succeeds.

    The temporary is removed on error, and those of killed processes when ``path`` is next
    written (:func:`remove_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_npz_atomic(path: str | Path, **arrays: Any) -> None:
    """Write NumPy ``arrays`` as a compressed ``.npz`` to ``path`` atomically."""
    import numpy as np

    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_tsv_atomic(frame, path: str | Path, float_format: str = "%.6g") -> None:
    """Write a pandas DataFrame as TSV atomically."""
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format=float_format)


def write_fasta_atomic(records, path: str | Path, width: int = 60) -> None:
    """Write ``(header, sequence)`` pairs as FASTA (``width`` columns) atomically."""
    with atomic_file(path) as tmp, open(tmp, "w") as handle:
        for header, seq in records:
            lines = (seq[i : i + width] + "\n" for i in range(0, len(seq), width))
            handle.write(f">{header}\n" + "".join(lines))


def markdown_table(table: pd.DataFrame) -> str:
    """Render a DataFrame as a GitHub markdown table (floats with 4 decimals)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"
