"""Crash-safe training: atomic checkpoint files, a checkpoint on SIGTERM, ``ckpt_path`` resolution.

* :class:`AtomicCheckpointIO` writes every Lightning checkpoint to a temporary file beside the
  target, fsyncs it and renames it over the target, so a kill at any moment leaves either the old
  or the new ``last.ckpt``, never a truncated one. (Lightning's own writer buffers the checkpoint
  and moves an fsspec temp file from the system temp folder into place; across filesystems that
  move is a copy, which a kill can cut short.)
* :class:`SaveOnSigterm` writes ``checkpoints/last.ckpt`` when Lightning stops on SIGTERM, and on
  SLURM (submitit or sbatch) turns the timeout/preemption signal into that same stop before
  requeueing the job.
* :func:`resolve_ckpt_path` gives ``ckpt_path`` its meaning: ``null`` resumes in place only when
  this run's own folder already holds a checkpoint (a requeued SLURM job), ``last`` resumes from
  this folder's or else the newest ``checkpoints/last.ckpt`` of ``<log_dir>/<task_name>``, and a
  path resumes from that file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genolm.checkpoints import safe_load
from genolm.errors import GenolmError
from genolm.io import atomic_file

log = logging.getLogger("genolm.training.resume")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target folder, fsync, then rename into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (remote URLs use Lightning's writer)."""
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_file(path) as tmp:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
        fd = os.open(Path(path).parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)

    def load_checkpoint(self, path: str | Path, map_location: Any | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Read a checkpoint weights-only (:func:`genolm.checkpoints.safe_load`), whatever Lightning asks.

        Every ``trainer.fit/validate/test(ckpt_path=...)`` of a genolm trainer reads through here.
        """
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return safe_load(path, map_location=map_location or "cpu")


def slurm_requeue(signum: int, frame: Any) -> None:
    """Requeue this SLURM job (``scontrol requeue``; global rank 0 only)."""
    if os.environ.get("SLURM_PROCID", "0") != "0":
        return
    job = os.environ["SLURM_JOB_ID"]
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    code = subprocess.call(["scontrol", "requeue", job])
    log.warning("scontrol requeue %s: %s", job, "done" if code == 0 else f"failed ({code})")


def preemption_handler() -> tuple[int, Callable[[int, Any], None]] | None:
    """``(signal, requeue action)`` of this job's timeout/preemption signal, if it has one.

    submitit jobs (``hydra/launcher=slurm``, ``submitit_local``): its signal (USR2) and its own
    handler, which requeues and exits. Other SLURM jobs (``srun`` in an sbatch script with
    ``--signal=SIGUSR1@<s> --requeue``, as ``experiments/slurm/pretrain.sbatch``): SIGUSR1 and
    ``scontrol requeue``.
    """
    if "SUBMITIT_EXECUTOR" in os.environ:
        sig = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
        handler = signal.getsignal(sig) if sig is not None else None
        return (sig, handler) if callable(handler) else None
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect() and os.environ.get("SLURM_JOB_ID"):
        return signal.SIGUSR1, slurm_requeue
    return None


class SaveOnSigterm(Callback):
    """Stop on SIGTERM at a batch boundary agreed by every rank, save ``last.ckpt``, exit.

    Lightning's own SIGTERM handler runs a collective inside the signal handler and lets each rank
    stop at the first batch end after *its* signal arrived; under DDP the ranks can then stop at
    different steps and wait on each other for ever. Here the handler only records the request;
    at every training batch end the ranks agree (one all-reduce of a flag) whether any of them was
    asked to stop, and then all of them raise Lightning's ``SIGTERMException`` after the same batch
    (the first that ends an optimizer step; after validation, when one is due), save the checkpoint
    together (rank 0 writes) and exit.

    On SLURM the timeout/preemption signal (see :func:`preemption_handler`) takes the same path and
    then requeues the job; the requeued job resumes from that checkpoint in the same folder with
    the same data order. (Left alone, submitit would requeue and exit mid-step, and Lightning's own
    SLURM handler would checkpoint mid-step from inside the signal handler.)

    Args:
        dirpath: checkpoint folder (the run's ``checkpoints/``).
        filename: file name of the checkpoint.

    """

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self.saved: Path | None = None
        self._requeue: Callable[[int, Any], None] | None = None
        self._previous: tuple[int, Any] | None = None  # (signal, handler before ours)
        self._pending: tuple[int, Any] | None = None  # a deferred (signal, frame)
        self._requested = False  # this rank was signalled
        self._agreed = False  # all ranks know that some rank was signalled
        self._last_step = -1  # global step at the last agreement

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Route the job's preemption signal through the same agreed stop."""
        found = preemption_handler() if stage == "fit" else None
        if found is None:
            return
        sig, self._requeue = found
        self._previous = (sig, signal.getsignal(sig))

        def stop_then_requeue(signum: int, frame: Any) -> None:
            log.warning("signal %d (timeout or preemption): stopping at the next batch to save %s",
                        signum, self.path)
            self._pending = (signum, frame)
            self._requested = True

        signal.signal(sig, stop_then_requeue)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._requested = True  # no I/O, no collectives: a signal can arrive inside either

    def _take_sigterm(self) -> None:
        # Lightning installs its handler just before the sanity check; Lightning's teardown puts
        # back what was there before its own
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        """Take SIGTERM over from Lightning (the sanity check is the first thing it runs)."""
        self._take_sigterm()

    def on_train_start(self, trainer, pl_module) -> None:
        """Take SIGTERM over from Lightning (runs without a sanity check)."""
        self._take_sigterm()

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Agree across ranks whether to stop after this batch.

        Only batches that ended an optimizer step count: a stop inside a gradient-accumulation
        window would lose the window's gradients.
        """
        if self._agreed or trainer.global_step == self._last_step:
            return
        self._last_step = trainer.global_step
        self._agreed = trainer.strategy.reduce_boolean_decision(self._requested, all=False)
        if self._agreed:
            trainer._signal_connector.received_sigterm = True  # Lightning raises after this batch

    def on_validation_start(self, trainer, pl_module) -> None:
        """A validation due at the stopping batch runs to its end first."""
        if self._agreed:
            trainer._signal_connector.received_sigterm = False

    def on_validation_end(self, trainer, pl_module) -> None:
        """Re-arm the stop once the validation is over."""
        if self._agreed:
            trainer._signal_connector.received_sigterm = True

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Put the previous preemption handler back."""
        if self._previous is not None:
            signal.signal(*self._previous)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Save the checkpoint (all ranks take part; rank 0 writes), then requeue if deferred."""
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        trainer.save_checkpoint(self.path)
        self.saved = self.path
        if trainer.is_global_zero:
            log.warning("stopped at step %d: saved %s; resume with ckpt_path=%s",
                        trainer.global_step, self.path, self.path)
        if self._pending is not None and self._requeue is not None:
            self._requeue(*self._pending)  # requeue (rank 0); submitit's handler also exits


def _newest(paths: list[Path]) -> Path | None:
    paths = [p for p in paths if p.is_file()]
    return max(paths, key=lambda p: p.stat().st_mtime) if paths else None


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path, task_dir: str | Path) -> str | None:
    """The checkpoint a run resumes from (``None``: start fresh).

    Args:
        ckpt_path: ``None``, ``"last"`` or a file.
        output_dir: this run's folder.
        task_dir: ``<log_dir>/<task_name>``, searched for ``last``.

    Raises:
        GenolmError: the file is missing, or ``last`` finds no checkpoint.

    """
    own = Path(output_dir)
    # a requeued SLURM job reruns in the same folder: Lightning's hpc_ckpt_N.ckpt or our last.ckpt
    in_place = _newest([own / "checkpoints" / "last.ckpt", *own.glob("hpc_ckpt_*.ckpt")])
    if ckpt_path is None:
        if in_place is not None:
            log.info("resuming in place from %s", in_place)
        return str(in_place) if in_place else None
    if str(ckpt_path) == "last":
        found = in_place or _newest(list(Path(task_dir).glob("**/checkpoints/last.ckpt")))
        if found is None:
            raise GenolmError(f"ckpt_path=last: no checkpoints/last.ckpt under {task_dir} to resume from")
        log.info("ckpt_path=last: resuming from %s", found)
        return str(found)
    if not Path(ckpt_path).is_file():
        raise GenolmError(f"{ckpt_path}: checkpoint to resume from not found")
    return str(ckpt_path)


def check_same_shapes(ckpt_path: str | Path, module: torch.nn.Module) -> None:
    """Raise a one-line :class:`GenolmError` when the checkpoint holds another model's weights."""
    ckpt = safe_load(ckpt_path, mmap=True)  # weights-only: refuses a pickle that would run code
    theirs = ckpt.get("state_dict")
    if not isinstance(theirs, dict):
        raise GenolmError(f"{ckpt_path}: cannot be read as a Lightning checkpoint (no state_dict)")
    kind = ckpt.get("genolm", {}).get("kind")
    if kind is not None and kind != getattr(module, "kind", kind):
        raise GenolmError(f"{ckpt_path}: a {kind} checkpoint; this run trains a {module.kind}")
    ours = module.state_dict()
    differ = [k for k in ours if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)]
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if not (differ or missing or extra):
        return
    saved = ckpt.get("genolm", {}).get("hf_config", {})
    current = module.hf_config() if hasattr(module, "hf_config") else {}
    changed = [f"{k} {saved[k]} -> {current[k]}" for k in sorted(set(saved) & set(current))
               if saved[k] != current[k] and isinstance(saved[k], int | float | str)][:6]
    first = (f"{differ[0]} is {tuple(theirs[differ[0]].shape)} there, {tuple(ours[differ[0]].shape)} here"
             if differ else f"first missing: {(missing or extra)[0]}")
    raise GenolmError(
        f"{ckpt_path}: checkpoint of a different model shape ({len(differ)} tensors differ, "
        f"{len(missing)} missing, {len(extra)} unexpected; {first}"
        + (f"; config: {', '.join(changed)}" if changed else "")
        + "); resume with the model config it was trained with")


def with_sigterm_checkpoint(callbacks: list[Any]) -> list[Any]:
    """``callbacks`` plus :class:`SaveOnSigterm` into the first ``ModelCheckpoint``'s folder (if any)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    folder = next((c.dirpath for c in callbacks if isinstance(c, ModelCheckpoint) and c.dirpath), None)
    return [*callbacks, SaveOnSigterm(folder)] if folder else list(callbacks)
