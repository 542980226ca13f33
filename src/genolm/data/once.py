"""Data prepared once per multi-process run: global rank 0 builds, the other ranks wait for it.

Processes started together by a cluster launcher (``srun``, or ``NODE_RANK``/``LOCAL_RANK`` on
several nodes) would each prepare the corpus, train the tokenizer and tokenize the genome at the
same time: the results agree (every build is atomic), but a full genome is then prepared once per
GPU. Here global rank 0 prepares and leaves a marker, ``<cache>/ready/<key>.json``, keyed by the
inputs (path, size, modification time, weight) and every preparation parameter; the other ranks
wait for that marker and then load what rank 0 wrote. Ranks that Lightning starts itself (one
node, ``trainer=ddp``) start after rank 0 has prepared, find the marker and do not wait.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from genolm.errors import GenolmError
from genolm.io import fingerprint, write_json_atomic
from genolm.run_folder import is_extra_rank

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long a rank waits for global rank 0 before giving up.
WAIT_LIMIT_S = 6 * 3600
#: A failure marker counts if written at most this long before this process started.
FAILURE_SLACK_S = 600
_STARTED = time.time()  # this module is imported as the process starts


def input_stamp(inputs: Sequence[tuple[Path, float]]) -> list[dict[str, Any]]:
    """Path, size, modification time and weight of every corpus input (cheap: no hashing).

    Args:
        inputs: ``(path, weight)`` pairs, as :func:`genolm.data.corpus.weighted_inputs` returns them.

    """
    stamps = []
    for path, weight in inputs:
        stat = path.stat()
        stamps.append({"path": str(path.resolve()), "weight": weight, "size": stat.st_size,
                       "mtime_ns": stat.st_mtime_ns})
    return stamps


def factory_id(factory: Callable[..., Any]) -> dict[str, Any]:
    """A stable description of a (partial) factory: its qualified name and bound arguments."""
    if isinstance(factory, functools.partial):
        return {**factory_id(factory.func), "args": [repr(a) for a in factory.args],
                "kwargs": {k: repr(v) for k, v in sorted(factory.keywords.items())}}
    return {"name": f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', repr(factory))}"}


def _wait(marker: Path, failed: Path, poll_s: float, limit_s: float) -> None:
    """Block until ``marker`` exists; raise on a fresh failure marker or after ``limit_s``."""
    started, said = time.time(), 0.0
    while not marker.is_file():
        if failed.is_file() and failed.stat().st_mtime >= _STARTED - FAILURE_SLACK_S:
            raise GenolmError(f"global rank 0 failed to prepare the data: {failed.read_text().strip()}")
        waited = time.time() - started
        if waited > limit_s:
            raise GenolmError(f"waited {waited:.0f} s for global rank 0 to prepare the data "
                              f"({marker} never appeared); see rank 0's log")
        if waited - said >= 60:
            log.info("waiting for global rank 0 to prepare the data (%.0f s so far)", waited)
            said = waited
        time.sleep(poll_s)


def prepare_once(key: Mapping[str, Any], root: str | Path, build: Callable[[], T],
                 poll_s: float = 2.0, limit_s: float = WAIT_LIMIT_S) -> T:
    """Run ``build`` on global rank 0 first; other ranks run it only once rank 0 has finished.

    ``build`` must be idempotent (here: reuse what the cache holds), since the other ranks run it
    too, to load what rank 0 made.

    Args:
        key: everything that decides what ``build`` makes.
        root: cache root; markers go to ``root/ready/``.
        build: the preparation.
        poll_s: seconds between checks for the marker.
        limit_s: longest wait.

    Raises:
        GenolmError: on a rank other than 0, when rank 0 failed (it leaves ``<key>.failed``) or
            the marker did not appear within ``limit_s``.

    """
    stem = fingerprint(dict(key))[:16]
    marker, failed = Path(root) / "ready" / f"{stem}.json", Path(root) / "ready" / f"{stem}.failed"
    if is_extra_rank():
        _wait(marker, failed, poll_s, limit_s)
        return build()
    try:
        result = build()
    except Exception as err:
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{type(err).__name__}: {err}\n")
        raise
    failed.unlink(missing_ok=True)
    write_json_atomic(marker, {"key": dict(key), "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    return result
