"""Samplers that make training order independent of the process count and resumable mid-epoch.

Both subclass :class:`torch.utils.data.DistributedSampler`, so Lightning keeps them as they are
instead of wrapping the loader in its own sampler (it only injects one when the loader's sampler is
not a ``DistributedSampler``).

* :class:`ResumableSampler` (training): one permutation of the whole dataset per epoch, drawn from
  ``(seed, epoch)`` only; rank ``r`` of ``R`` takes positions ``r, r + R, r + 2R, ...``. With
  micro-batch ``b`` and ``R`` ranks, optimizer step ``k`` (no accumulation) sees exactly the
  permuted samples ``[k * b * R, (k + 1) * b * R)`` whatever ``R`` is, so a 2-process run and a
  1-process run with the same global batch train on the same samples per step. ``start`` skips
  the samples an interrupted run already consumed in this epoch.
* :class:`StrandSampler` (training with ``data.rc_aug``): the same, over a dataset whose second
  half is the first half reverse-complemented; each epoch draws one strand per sequence from
  ``(seed, epoch)``, so an epoch still shows every sequence once.
* :class:`ShardSampler` (evaluation): contiguous, unpadded shards in order, so no sample is counted
  twice and synced metrics equal the single-process ones.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler

log = logging.getLogger(__name__)


class ResumableSampler(DistributedSampler):
    """Deterministic, world-size-independent, resumable training order.

    Args:
        dataset: the training dataset.
        num_replicas: number of processes.
        rank: this process.
        seed: base seed; the permutation of epoch ``e`` depends on ``(seed, e)`` only.
        drop_last: drop the tail that does not fill a whole ``num_replicas`` stride (always
            done, so every rank yields the same count); kept for the ``DistributedSampler``
            signature.
        start: global number of samples of the current epoch already consumed (resume).

    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 drop_last: bool = True, start: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.per_rank = len(dataset) // num_replicas
        self.start = start

    def permutation(self) -> torch.Tensor:
        """The global order of this epoch's samples."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return torch.randperm(len(self.dataset), generator=generator)

    def __iter__(self) -> Iterator[int]:
        """Indices of this rank from ``start`` on (then ``start`` is cleared for later epochs)."""
        usable = self.per_rank * self.num_replicas
        order = self.permutation()[self.start:usable][self.rank::self.num_replicas]
        self.start = 0
        return iter(order.tolist())

    def __len__(self) -> int:
        """Samples per rank in a whole epoch (Lightning counts batches from this)."""
        return self.per_rank

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at every epoch start; a new epoch clears a pending resume offset."""
        if epoch != self.epoch:
            self.start = 0
        super().set_epoch(epoch)


class StrandSampler(ResumableSampler):
    """:class:`ResumableSampler` over sequences on a random strand.

    The dataset holds ``2n`` items: ``n .. 2n - 1`` are ``0 .. n - 1`` on the reverse strand. An
    epoch yields ``n`` indices, each sequence once, on a strand drawn with its position from
    ``(seed, epoch)`` only (so resuming and the process count change nothing).
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 drop_last: bool = True, start: int = 0) -> None:
        super().__init__(dataset, num_replicas, rank, seed, drop_last, start)
        if len(dataset) % 2:
            raise ValueError(f"StrandSampler needs both strands of every sequence, got {len(dataset)} items")
        self.n = len(dataset) // 2
        self.per_rank = self.n // num_replicas

    def permutation(self) -> torch.Tensor:
        """The epoch's order of the sequences, each shifted by ``n`` when drawn on the reverse strand."""
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=generator)
        return order + self.n * torch.randint(0, 2, (self.n,), generator=generator)


class ShardSampler(DistributedSampler):
    """Contiguous unpadded shards in dataset order (evaluation).

    Rank ``r`` gets ``[r * n / R, (r + 1) * n / R)``; shards differ by at most one sample.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        n = len(dataset)
        self.lo, self.hi = math.floor(rank * n / num_replicas), math.floor((rank + 1) * n / num_replicas)

    def __iter__(self) -> Iterator[int]:
        """Indices of this rank, in order."""
        return iter(range(self.lo, self.hi))

    def __len__(self) -> int:
        """Samples of this rank."""
        return self.hi - self.lo


def sampler_for(dataset: Dataset, trainer, train: bool, seed: int,
                resume: dict[str, int] | None = None, random_strand: bool = False) -> DistributedSampler:
    """The sampler of a loader: resumable shuffled order for training, shards for evaluation.

    Args:
        dataset: the split.
        trainer: the attached Lightning trainer (``None`` outside a fit: one process).
        train: training order (else evaluation shards).
        seed: seed of the training order.
        resume: ``{"epoch", "consumed"}`` from a checkpoint (see :func:`loader_state`).
        random_strand: training items are both strands of each sequence; draw one per epoch
            (:class:`StrandSampler`).

    """
    replicas, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
    if not train:
        return ShardSampler(dataset, replicas, rank)
    resume = resume or {}
    kind = StrandSampler if random_strand else ResumableSampler
    sampler = kind(dataset, replicas, rank, seed=seed, start=resume.get("consumed", 0))
    sampler.set_epoch(resume.get("epoch", 0))
    return sampler


def loader_state(trainer, batch_size: int, seed: int) -> dict[str, int]:
    """Position of the training stream to store in a checkpoint.

    ``batch_progress.current.processed`` counts the micro-batches of this epoch that went through
    the training step; that is where Lightning resumes its batch counter, both for checkpoints
    written at batch end (periodic) and at validation end or on SIGTERM.
    """
    if trainer is None or trainer.state.fn != "fit":
        return {}
    processed = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return {"epoch": trainer.current_epoch, "consumed": processed * batch_size * trainer.world_size,
            "batch_size": batch_size, "world_size": trainer.world_size, "seed": seed}


def check_resume_layout(state: dict[str, int], batch_size: int, trainer) -> None:
    """Warn when a run resumes with another micro-batch x process layout than it saved.

    The sample position is exact either way (the order is global); only Lightning's count of
    batches left in the resumed epoch would be off.
    """
    if not state or trainer is None:
        return
    # Lightning warns that a mid-epoch resume repeats data unless the DataLoader is stateful; the
    # sampler position restored from ``state`` is what makes this resume exact
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
    saved = state.get("batch_size", batch_size) * state.get("world_size", trainer.world_size)
    if saved != batch_size * trainer.world_size:
        log.warning("resuming with %d samples per micro-batch step across processes, the checkpoint used "
                    "%d: the data position is exact, the resumed epoch's batch count is approximate",
                    batch_size * trainer.world_size, saved)
