"""``SequenceClassifierModule``: finetune a DNA LM to classify sequences."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric
from transformers import PreTrainedTokenizerFast

from genolm.checkpoints import classifier_from_pretrained
from genolm.inference.strands import average_strands
from genolm.models.classifier import apply_mode, classifier_from_config
from genolm.models.fast.switch import use_fast
from genolm.modules.base import GenolmModule
from genolm.modules.metrics import ClassificationMetrics


class SequenceClassifierModule(GenolmModule):
    """Sequence classification with a transformers ``*ForSequenceClassification`` network.

    Logs ``train/loss``, ``val/loss``, ``val/{acc,f1,mcc,auroc,auprc}``, ``val/mcc_best`` and the
    same ``test/*`` metrics; test predictions are kept in :attr:`test_predictions`. Test batches
    that hold both strands (``rc_input_ids``) are scored on both and their class probabilities
    averaged (``strand=average``).

    Args:
        init_from: genolm ``.ckpt``, genolm ``hf/`` export or Hugging Face folder.
        num_labels: number of classes.
        mode: ``full``, ``lora`` or ``probe``.
        new_head: start from a fresh head even if ``init_from`` holds a fitting one.
        lora: LoRA settings (``r``, ``alpha``, ``dropout``, ``target_modules``).
        optimizer, scheduler: see :mod:`genolm.modules.optimizers`.
        hf_config: set automatically; when given (reloading a checkpoint) the network is rebuilt
            from it instead of reading ``init_from``.
        fast: genolm's kernels ``auto``, ``true`` or ``false`` (:mod:`genolm.models.fast.switch`).
        trust_remote_code: let a Hugging Face folder's own model code run (DNABERT-2, ...);
            also used when the checkpoint rebuilds such a network.

    Any transformers sequence classifier works: Mixtral or other causal LMs (head on the last
    token), BERT, ESM and other masked LMs (head on the pooled or first-token state). The
    checkpoint stores the network's config and tokenizer, so it rebuilds without ``init_from``
    (except for models with their own code, whose code is found again through ``init_from``).

    """

    kind = "classifier"

    def __init__(self, init_from: str, num_labels: int = 2, mode: str = "full", new_head: bool = False,
                 lora: dict[str, Any] | None = None, optimizer: dict[str, Any] | None = None,
                 scheduler: dict[str, Any] | None = None, hf_config: dict[str, Any] | None = None,
                 fast: str | bool = "auto", trust_remote_code: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer: PreTrainedTokenizerFast | None = None
        if hf_config is None:
            net, self.tokenizer = classifier_from_pretrained(init_from, num_labels, new_head,
                                                             trust_remote_code)
            self.hparams.hf_config = net.config.to_dict()
        else:
            net = classifier_from_config(hf_config, init_from, trust_remote_code)
        # from_pretrained returns eval mode and Lightning keeps sub-module modes: train explicitly
        self.net = apply_mode(net, mode, lora).train()
        self.fast = fast
        use_fast(self.net, fast)
        self.metrics = torch.nn.ModuleDict({s: ClassificationMetrics(num_labels) for s in ("val", "test")})
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_mcc_best = MaxMetric()
        self.test_predictions: list[tuple[torch.Tensor, torch.Tensor]] = []
        # prefix of test-stage metrics; genolm-eval sets it to the evaluated split's name
        self.test_prefix = "test"

    def hf_config(self) -> dict[str, Any]:
        """The network's transformers config as a dict (stored in ``hparams`` too)."""
        return self.hparams.hf_config

    @property
    def max_positions(self) -> int:
        """Longest input (in tokens) the network accepts."""
        return int(self.hparams.hf_config.get("max_position_embeddings", 512))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits ``(N, C)``."""
        return self.net(input_ids=input_ids, attention_mask=attention_mask).logits

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and class probabilities; a batch with ``rc_input_ids`` averages both strands."""
        logits = self(batch["input_ids"], batch["attention_mask"]).float()
        if "rc_input_ids" not in batch:
            return F.cross_entropy(logits, batch["labels"]), logits.softmax(-1)
        reverse = self(batch["rc_input_ids"], batch["rc_attention_mask"]).float()
        probs = average_strands([logits.softmax(-1), reverse.softmax(-1)])
        return F.nll_loss(probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), batch["labels"]), probs

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Cross-entropy of the batch."""
        loss, _ = self._step(batch)
        # sync_dist: the epoch mean over every rank's batches under DDP (one tiny all-reduce a step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True)
        return loss

    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss, probs = self._step(batch)
        getattr(self, f"{stage}_loss").update(loss, weight=len(batch["labels"]))
        self.metrics[stage].update(probs, batch["labels"])
        return probs

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate validation loss and metrics."""
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate test metrics and keep ``(index, probabilities)`` for the predictions table."""
        probs = self._eval_step("test", batch)
        self.test_predictions.append((batch["index"].cpu(), probs.detach().cpu()))

    def _log_stage(self, stage: str) -> dict[str, torch.Tensor]:
        values = self.metrics[stage].compute()
        loss = getattr(self, f"{stage}_loss")
        prefix = self.test_prefix if stage == "test" else stage
        self.log(f"{prefix}/loss", loss.compute(), prog_bar=stage == "val")
        for name, value in values.items():
            self.log(f"{prefix}/{name}", value, prog_bar=name == "mcc")
        self.metrics[stage].reset()
        loss.reset()
        return values

    def on_validation_epoch_end(self) -> None:
        """Log validation metrics and the best MCC so far (``val/mcc_best``)."""
        values = self._log_stage("val")
        if not self.trainer.sanity_checking:
            self.val_mcc_best.update(values["mcc"])
            self.log("val/mcc_best", self.val_mcc_best.compute())

    def on_test_epoch_start(self) -> None:
        """Start a fresh predictions list."""
        self.test_predictions = []

    def on_test_epoch_end(self) -> None:
        """Log test metrics."""
        self._log_stage("test")
