"""``CausalLMModule``: next-token pretraining of a Mixtral DNA language model."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import SumMetric
from transformers import PreTrainedTokenizerFast

from genolm.inference.lm_bits import dna_nll, special_token_mask
from genolm.models.fast.fused_loss import linear_cross_entropy
from genolm.models.fast.mixtral import mixtral_hidden_states
from genolm.models.fast.switch import lean_trunk, use_fast
from genolm.models.mixtral import build_causal_lm, mixtral_config
from genolm.modules.base import GenolmModule

IGNORE = -100
LN2 = math.log(2.0)


def register_output_recorders(net: torch.nn.Module) -> None:
    """Make transformers' output capturing work for ``net`` in the current process."""
    try:
        from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY
    except ImportError:  # older transformers record outputs without a registry
        return
    for module in net.modules():
        recorders = getattr(module, "_can_record_outputs", None)
        if recorders and not _CAN_RECORD_REGISTRY.get(module):
            _CAN_RECORD_REGISTRY[module] = recorders


class CausalLMModule(GenolmModule):
    """Causal-LM pretraining of ``MixtralForCausalLM`` with exact token-weighted validation.

    Logs ``train/loss`` (cross-entropy + router aux loss), ``train/ce``, ``train/aux_loss``,
    ``train/lr``, ``train/tokens_per_s``, ``train/bases_per_s``, ``val/loss``, ``val/ppl`` and
    ``val/bits_per_base`` (code length of the validation DNA in bits per base: special-token
    targets such as chunk separators are not scored and the next-token distribution is
    renormalised over DNA tokens, so it compares across tokenizers and with Markov chains) and
    ``val/bases_seen`` (training bases consumed so far, summed over processes). Each
    validation's ``(bases_seen, val/bits_per_base)`` is kept in :attr:`curve` (saved in
    checkpoints) for the learning-curve plot.

    Args:
        arch: Mixtral architecture keys (see ``conf/model``).
        vocab_size, pad_token_id, bos_token_id, eos_token_id: from the tokenizer.
        optimizer: keyword arguments of :func:`genolm.modules.optimizers.adamw`.
        scheduler: keyword arguments of :func:`genolm.modules.optimizers.warmup_decay`.
        fast: ``auto``, ``true`` or ``false`` (:mod:`genolm.models.fast.switch`, resolved for the
            trainer's device in :meth:`setup`): on, the loss comes from
            :func:`genolm.models.fast.mixtral.mixtral_hidden_states` and
            :func:`genolm.models.fast.fused_loss.linear_cross_entropy` (same parameters, same
            numbers, less time and memory); off, from transformers' forward, which FSDP (it
            gathers parameters in module hooks) always uses.

    """

    kind = "causal_lm"

    def __init__(self, arch: dict[str, Any], vocab_size: int, pad_token_id: int,
                 bos_token_id: int, eos_token_id: int, optimizer: dict[str, Any] | None = None,
                 scheduler: dict[str, Any] | None = None, fast: str | bool = "auto") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = mixtral_config(arch, vocab_size, pad_token_id, bos_token_id, eos_token_id)
        self.net = build_causal_lm(self.config)
        self.tokenizer: PreTrainedTokenizerFast | None = None
        self.val_nll, self.val_tokens = SumMetric(), SumMetric()
        self.val_dna_bits, self.val_dna_bases = SumMetric(), SumMetric()
        self._last_batch_end: float | None = None
        self.fast = fast
        use_fast(self.net, fast)
        self.bases_seen = 0
        self._pending_bases: torch.Tensor | None = None
        self.curve: list[tuple[int, float]] = []

    def hf_config(self) -> dict[str, Any]:
        """The ``MixtralConfig`` as a dict."""
        return self.config.to_dict()

    def setup(self, stage: str) -> None:
        """Re-register the network's output recorders in this process (spawned DDP workers).

        transformers records router logits through a per-process registry filled in
        ``__init__``; a model unpickled in a spawned worker skips ``__init__`` and would
        silently return no router logits, dropping the aux loss.
        """
        register_output_recorders(self.net)
        super().setup(stage)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """Run the network; returns the transformers output (``logits``, ``aux_loss``)."""
        return self.net(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                        output_router_logits=self.config.output_router_logits)

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        n_tok = (batch["labels"] != IGNORE).sum()
        if lean_trunk(self.net):
            hidden, aux = mixtral_hidden_states(self.net, batch["input_ids"], batch.get("attention_mask"),
                                                router_loss=self.config.output_router_logits)
            nll = linear_cross_entropy(hidden.reshape(-1, hidden.shape[-1]), self.net.lm_head.weight,
                                       batch["labels"].reshape(-1))
            return nll, n_tok, aux
        out = self(batch["input_ids"], batch.get("attention_mask"))
        logits = out.logits.float()
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["labels"].reshape(-1),
                              ignore_index=IGNORE, reduction="sum")
        return nll, n_tok, out.aux_loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Cross-entropy per target token plus ``router_aux_loss_coef`` x load-balancing loss."""
        nll, n_tok, aux = self._losses(batch)
        ce = nll / n_tok.clamp(min=1)
        loss = ce
        if self.config.output_router_logits:
            if not torch.is_tensor(aux):
                raise RuntimeError("router logits were not returned: the aux loss would be lost")
            loss = ce + self.config.router_aux_loss_coef * aux
            self.log("train/aux_loss", aux.detach(), on_step=True)
        seen = batch["bases"].sum()  # no host sync per step: folded in at validation
        self._pending_bases = seen if self._pending_bases is None else self._pending_bases + seen
        self.log("train/ce", ce.detach(), on_step=True)
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=True, sync_dist=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Log throughput between batches; stop (and so validate) at max_steps (see the base class)."""
        super().on_train_batch_end(outputs, batch, batch_idx)
        now = time.perf_counter()
        if self._last_batch_end is not None:
            dt = (now - self._last_batch_end) / self.trainer.world_size
            n_tok = float((batch["labels"] != IGNORE).sum())
            self.log("train/tokens_per_s", n_tok / dt, on_step=True, prog_bar=True)
            self.log("train/bases_per_s", float(batch["bases"].sum()) / dt, on_step=True)
        self._last_batch_end = now

    def on_train_epoch_start(self) -> None:
        """Reset the throughput clock (skips validation and data-loader start-up)."""
        self._last_batch_end = None

    def _special_ids(self, device: torch.device) -> torch.Tensor:
        ids = self.tokenizer.all_special_ids if self.tokenizer is not None else [
            self.config.pad_token_id, self.config.bos_token_id, self.config.eos_token_id]
        return special_token_mask(ids, self.config.vocab_size).to(device)

    def _dna_bits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Bits and bases of the DNA targets, next token renormalised over non-special tokens."""
        lean = lean_trunk(self.net)
        hidden = mixtral_hidden_states(self.net, batch["input_ids"], batch.get("attention_mask"),
                                       router_loss=False)[0] if lean else self(
            batch["input_ids"], batch.get("attention_mask")).logits
        special = self._special_ids(hidden.device)
        flat, labels = hidden.reshape(-1, hidden.shape[-1]), batch["labels"].reshape(-1)
        bases = batch["bases"].reshape(-1)
        bits = torch.zeros((), dtype=torch.float64, device=hidden.device)
        n_bases = torch.zeros((), dtype=torch.int64, device=hidden.device)
        for lo in range(0, len(flat), 4096):
            rows, target = flat[lo:lo + 4096], labels[lo:lo + 4096]
            logits = rows @ self.net.lm_head.weight.t() if lean else rows
            nll, keep = dna_nll(logits, target, special, target != IGNORE)
            bits += nll.double().sum() / LN2
            n_bases += (bases[lo:lo + 4096] * keep).sum()
        return bits, n_bases

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate summed NLL and target tokens, and the DNA's bits and bases."""
        nll, n_tok, _ = self._losses(batch)
        self.val_nll.update(nll)
        self.val_tokens.update(n_tok)
        bits, n_bases = self._dna_bits(batch)
        self.val_dna_bits.update(bits)
        self.val_dna_bases.update(n_bases)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/loss``, ``val/ppl``, ``val/bits_per_base`` and ``val/bases_seen``."""
        nll, n_tok = self.val_nll.compute(), self.val_tokens.compute()
        bits, n_bases = self.val_dna_bits.compute(), self.val_dna_bases.compute()
        loss = nll / n_tok.clamp(min=1)
        bits_per_base = bits / n_bases.clamp(min=1)
        self.log("val/loss", loss, prog_bar=True, sync_dist=False)
        self.log("val/ppl", torch.exp(loss))
        self.log("val/bits_per_base", bits_per_base.float())
        self._fold_bases()
        seen = self.bases_seen * (self.trainer.world_size if self._trainer is not None else 1)
        self.log("val/bases_seen", float(seen))
        if self._trainer is None or not self.trainer.sanity_checking:
            self.curve.append((int(seen), float(bits_per_base)))
        for metric in (self.val_nll, self.val_tokens, self.val_dna_bits, self.val_dna_bases):
            metric.reset()
        self._last_batch_end = None

    def _fold_bases(self) -> None:
        if self._pending_bases is not None:
            self.bases_seen += int(self._pending_bases)
            self._pending_bases = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also keep the bases seen and the learning curve."""
        super().on_save_checkpoint(checkpoint)
        self._fold_bases()
        checkpoint["genolm"]["bases_seen"] = self.bases_seen
        checkpoint["genolm"]["curve"] = [list(p) for p in self.curve]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the tokenizer, the bases seen and the learning curve."""
        super().on_load_checkpoint(checkpoint)
        self.bases_seen = int(checkpoint.get("genolm", {}).get("bases_seen", 0))
        self.curve = [(int(a), float(b)) for a, b in checkpoint.get("genolm", {}).get("curve", [])]
