"""``GenolmModule``: what every genolm LightningModule shares.

Subclasses set ``self.net`` (a transformers model), ``self.tokenizer`` and the class attribute
``kind``, and implement :meth:`hf_config`. Checkpoints then carry a ``genolm`` section (kind,
transformers config, tokenizer) so they rebuild themselves without Hydra.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
from transformers import PreTrainedTokenizerFast

from genolm.data.tokenizers import tokenizer_from_state, tokenizer_state
from genolm.models.fast.switch import use_fast
from genolm.modules.optimizers import adamw, warmup_decay

log = logging.getLogger("genolm.modules")
SHARDED = (FSDPStrategy, ModelParallelStrategy)


class GenolmModule(L.LightningModule):
    """Shared optimizer set-up and self-describing checkpoints."""

    kind = "module"
    tokenizer: PreTrainedTokenizerFast | None = None
    # genolm's fast kernels: auto, true or false (genolm.models.fast.switch); resolved in setup()
    fast: str | bool = "auto"

    def setup(self, stage: str) -> None:
        """Switch genolm's kernels per ``fast`` for the trainer's device.

        Sharded strategies (FSDP) gather parameters in module hooks and keep transformers' own.
        """
        if self._trainer is not None and isinstance(self.trainer.strategy, SHARDED):
            use_fast(self.net, False)
        else:
            device = self.trainer.strategy.root_device if self._trainer is not None else None
            use_fast(self.net, self.fast, device)

    def hf_config(self) -> dict[str, Any]:
        """The network's transformers config as a plain dict."""
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW on trainable parameters + warmup/decay over ``trainer.estimated_stepping_batches``."""
        trainer = self.trainer
        # Lightning refuses gradient clipping with a fused optimizer under mixed precision
        mixed_clip = "mixed" in str(trainer.precision) and bool(trainer.gradient_clip_val)
        opt = adamw(self.net, **{"fused": not mixed_clip, **(self.hparams.optimizer or {})})
        sched = warmup_decay(opt, int(trainer.estimated_stepping_batches),
                             **(self.hparams.scheduler or {}))
        return {"optimizer": opt, "lr_scheduler": sched}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Stop, and so validate, at the batch whose optimizer step reaches ``trainer.max_steps``.

        Lightning ends a run whose ``max_steps`` falls mid-epoch without validating it: no
        ``val/loss`` (early stopping fails), no best checkpoint. ``should_stop`` makes it validate
        at this batch instead, with any gradient accumulation, epoch length or device count
        (``global_step`` counts optimizer steps and is the same on every rank).
        """
        trainer = self.trainer
        max_steps = trainer.max_steps if trainer.max_steps is not None else -1
        if not 0 < max_steps <= trainer.global_step or trainer.should_stop:
            return
        trainer.should_stop = True
        if batch_idx + 1 < trainer.num_training_batches and trainer.is_global_zero:
            log.info("max_steps=%d reached at batch %d of epoch %d (of %s): validating now instead of at "
                     "the epoch's end", max_steps, batch_idx + 1, trainer.current_epoch,
                     trainer.num_training_batches)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store kind, transformers config and tokenizer so the checkpoint rebuilds itself.

        Hyper-parameters are stored as plain data (no OmegaConf, path or numpy objects), so the
        checkpoint loads weights-only (:func:`genolm.checkpoints.safe_load`).
        """
        from genolm.checkpoints import plain_data

        checkpoint.pop(self.CHECKPOINT_HYPER_PARAMS_TYPE, None)
        key = self.CHECKPOINT_HYPER_PARAMS_KEY
        if key in checkpoint:
            checkpoint[key] = plain_data(checkpoint[key])
        checkpoint["genolm"] = {"kind": self.kind, "hf_config": self.hf_config()}
        if self.tokenizer is not None:
            checkpoint["genolm"]["tokenizer"] = tokenizer_state(self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the tokenizer saved by :meth:`on_save_checkpoint`."""
        state = checkpoint.get("genolm", {}).get("tokenizer")
        if state is not None:
            self.tokenizer = tokenizer_from_state(state)
