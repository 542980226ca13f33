"""One run per folder: unique names, a lock held while the run lives, no silent re-use.

Run folders are named ``logs/<task>/runs/<date>_<time>_<microseconds>`` (conf/hydra/default.yaml),
so two runs started in the same second get two folders. On top of the name:

* the run takes an exclusive ``flock`` on ``<run dir>/.genolm/lock`` for its lifetime; a second
  process pointed at the same folder (``hydra.run.dir=...``) is refused while the first lives
  (the kernel drops the lock when a process dies, even on SIGKILL);
* a folder that already holds an earlier run (``.genolm/run.json``) is refused, unless this is the
  same scheduler job re-running after a requeue (same SLURM / submitit job id), or the user asked
  to resume it (``genolm-pretrain ckpt_path=last`` or a checkpoint path);
* a run that fails before writing anything of its own (bad input, bad config) removes the folder it
  created, so a mistyped command leaves nothing behind.

Only global rank 0 claims the folder: DDP ranks started by Lightning re-run the command with the
rank-0 folder and rank variables set.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genolm.errors import GenolmError
from genolm.io import write_json_atomic

MARKER_DIR = ".genolm"
_RANK_VARS = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")
_held: dict[str, IO[str]] = {}  # run folder -> open lock file (kept open for the process lifetime)
_fresh: set[str] = set()  # run folders this process created


def is_extra_rank() -> bool:
    """Whether this process is a DDP rank other than global rank 0."""
    return any(os.environ.get(v, "0") not in ("", "0") for v in _RANK_VARS)


def job_log_name(job: str) -> str:
    """Stem of this process's Hydra job log (``<stem>.log``): one file per process of a run.

    All processes of a multi-node or SLURM run share the run folder. Global rank 0 keeps ``<job>``;
    ranks Lightning starts itself already have their own job name (``train_ddp_process_<local
    rank>``), suffixed with ``_node<k>`` on node k > 0; processes started by a cluster launcher
    with the same command line get ``_rank<r>`` (``SLURM_PROCID`` or torchrun's ``RANK``) or
    ``_node<k>_local<l>`` (``NODE_RANK``, ``LOCAL_RANK``). Two processes appending to one file on a
    network file system can overwrite each other's lines.

    Args:
        job: Hydra's ``hydra.job.name``.

    """
    env = os.environ
    node = env.get("NODE_RANK") or "0"
    if job.startswith("train_ddp_process_"):
        return job if node == "0" else f"{job}_node{node}"
    for var in ("SLURM_PROCID", "RANK"):
        if env.get(var, "0") not in ("", "0"):
            return f"{job}_rank{env[var]}"
    local = env.get("LOCAL_RANK") or "0"
    return job if (node, local) == ("0", "0") else f"{job}_node{node}_local{local}"


def register_resolvers() -> None:
    """Register ``${genolm_log_name:<job>}`` (:func:`job_log_name`) for ``conf/hydra/default.yaml``."""
    if not OmegaConf.has_resolver("genolm_log_name"):
        OmegaConf.register_new_resolver("genolm_log_name", job_log_name)


def scheduler_job() -> str | None:
    """The scheduler job id of this process (SLURM array task, SLURM job, submitit local job), if any."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm:{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}"
    if env.get("SUBMITIT_LOCAL_JOB_ID"):
        return f"submitit-local:{env['SUBMITIT_LOCAL_JOB_ID']}"
    return None


def _lock(folder: Path) -> None:
    """Take the folder's lock or say which live process holds it."""
    (folder / MARKER_DIR).mkdir(parents=True, exist_ok=True)
    handle = open(folder / MARKER_DIR / "lock", "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise GenolmError(f"{folder}: run folder in use by a live run ({owner}); wait for it to end "
                          "or choose another hydra.run.dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held[str(folder)] = handle


def claim(folder: str | Path, resume: bool = False) -> bool:
    """Lock ``folder`` for this run and record it; refuse a folder that holds another run.

    Args:
        folder: this run's output folder (Hydra's ``runtime.output_dir``).
        resume: the user asked to continue the run in this folder (``ckpt_path`` set).

    Returns:
        Whether the folder was new to genolm (removed again by :func:`release_if_empty` on failure).

    Raises:
        GenolmError: another live run holds the folder, or it holds an earlier run and this
            is neither a resume nor the same scheduler job re-running.

    """
    folder = Path(folder)
    if is_extra_rank() or str(folder) in _held:
        return False
    _lock(folder)
    record = folder / MARKER_DIR / "run.json"
    job = scheduler_job()
    if record.is_file():
        before = json.loads(record.read_text() or "{}")
        if not resume and not (job and before.get("job") == job):
            _held.pop(str(folder)).close()
            raise GenolmError(
                f"{folder}: folder already holds a run (started {before.get('started', '?')}); "
                "genolm-pretrain continues it with ckpt_path=last, otherwise leave hydra.run.dir "
                "unset for a new folder")
        fresh = False
    else:
        fresh = True
    write_json_atomic(record, {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid(),
                               "host": socket.gethostname(), "job": job})
    return fresh


_BOOKKEEPING = {".hydra", MARKER_DIR}


def release_if_empty(folder: str | Path) -> bool:
    """Remove a run folder this run created when it holds only Hydra's and genolm's bookkeeping.

    Bookkeeping: ``.hydra/``, ``.genolm/`` and Hydra's job log (``<job>.log``).

    Returns:
        Whether the folder was removed.

    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    extra = [p for p in folder.iterdir() if p.name not in _BOOKKEEPING and p.suffix != ".log"]
    if extra:
        return False
    handle = _held.pop(str(folder), None)
    shutil.rmtree(folder, ignore_errors=True)
    if handle is not None:
        handle.close()
    for parent in list(folder.parents)[:3]:  # runs/, <task>/, logs/ when this run made them
        try:
            parent.rmdir()
        except OSError:
            break
    return True


def remove_if_unused(folder: str | Path | None) -> bool:
    """After a failure: remove ``folder`` if this run created it and wrote nothing of its own."""
    if folder is None or os.path.abspath(folder) not in _fresh:
        return False
    _fresh.discard(os.path.abspath(folder))
    return release_if_empty(folder)


class RunFolderGuard(Callback):
    """Hydra callback that claims each run's folder before Hydra writes into it.

    Args:
        resume_key: top-level config key whose value asks to continue an earlier run in the same
            folder (``ckpt_path`` for pretraining); ``None``: a used folder is always refused.

    """

    def __init__(self, resume_key: str | None = None) -> None:
        self.resume_key = resume_key

    def _claim(self, folder: str, config: DictConfig) -> None:
        resume = bool(self.resume_key and config.get(self.resume_key))
        folder = os.path.abspath(folder)
        try:
            if claim(folder, resume):
                _fresh.add(folder)
        except GenolmError as err:
            print(f"genolm: error: {err}", file=sys.stderr)
            sys.exit(1)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Single run: claim ``hydra.run.dir`` before Hydra saves ``.hydra/`` into it."""
        self._claim(str(config.hydra.run.dir), config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Multirun job: claim the job's folder (single runs were claimed in :meth:`on_run_start`)."""
        if config.hydra.mode == RunMode.MULTIRUN:
            self._claim(str(config.hydra.runtime.output_dir), config)
