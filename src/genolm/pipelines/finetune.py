"""Finetuning and evaluation of sequence classifiers: ``train(cfg)`` and ``evaluate(cfg)``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import pandas as pd
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from genolm.config_schema import FinetuneConfig
from genolm.data.classification import LabeledSequenceDataModule
from genolm.errors import GenolmError
from genolm.io import write_json_atomic, write_tsv_atomic
from genolm.models.classifier import trainable_parameters
from genolm.modules.classifier import SequenceClassifierModule
from genolm.training.trainer import build_trainer, job_scope
from genolm.utils import config_dir, instantiate_group, instantiate_loggers, report_errors, to_floats

log = logging.getLogger("genolm.pipelines.finetune")


def predictions_table(module: SequenceClassifierModule, records: pd.DataFrame) -> pd.DataFrame:
    """Join the module's test predictions with record ids and labels."""
    if not module.test_predictions:
        raise GenolmError("no predictions were made (empty split?)")
    index = torch.cat([i for i, _ in module.test_predictions]).numpy()
    probs = torch.cat([p for _, p in module.test_predictions]).numpy()
    order = index.argsort(kind="stable")
    index, probs = index[order], probs[order]
    table = pd.DataFrame({"id": records["id"].to_numpy()[index],
                          "label": records["label"].to_numpy()[index], "pred": probs.argmax(1)})
    for c in range(probs.shape[1]):
        table[f"prob_{c}"] = probs[:, c]
    return table


def write_outputs(out_dir: Path, metrics: dict[str, float], table: pd.DataFrame, split: str,
                  extra: dict[str, Any]) -> None:
    """Write ``metrics.json`` and ``predictions_<split>.tsv`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tsv_atomic(table, out_dir / f"predictions_{split}.tsv")
    write_json_atomic(out_dir / "metrics.json", {"metrics": metrics, **extra})


def classifier_trainer(cfg: DictConfig, with_logging: bool, micro_batch: int | None = None) -> L.Trainer:
    """Trainer for finetuning (callbacks and loggers) or for evaluation only (neither)."""
    if not with_logging:
        return build_trainer(cfg)
    return build_trainer(cfg, instantiate_group(cfg.get("callbacks")),
                         instantiate_loggers(cfg.get("logger"), cfg), micro_batch=micro_batch)


def gather_predictions(trainer: L.Trainer, module: SequenceClassifierModule) -> None:
    """Under DDP, give every rank all ranks' test predictions (each tested its own shard)."""
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        parts: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(parts, module.test_predictions)
        module.test_predictions = [item for part in parts for item in part]


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Finetune on ``cfg.data``: fit with early stopping, reload the best checkpoint, test.

    ``cfg.data.rc_aug`` trains on random strands; ``cfg.strand`` picks the strand(s) tested.

    Returns:
        ``(metrics, objects)``: validation and test metrics; module, datamodule, trainer,
        best checkpoint path and predictions table.

    """
    L.seed_everything(cfg.seed, workers=True)
    datamodule: LabeledSequenceDataModule = instantiate(cfg.data)
    datamodule.load()
    model: SequenceClassifierModule = instantiate(cfg.model, init_from=cfg.model_path,
                                                    num_labels=datamodule.num_labels, fast=cfg.fast,
                                                    trust_remote_code=cfg.get("trust_remote_code", False))
    datamodule.set_tokenizer(model.tokenizer, model.max_positions)
    datamodule.test_strand = cfg.strand
    trainable, total = trainable_parameters(model.net)
    log.info("finetune %s from %s: %s of %s parameters trainable (%s)", datamodule.name,
             cfg.model_path, f"{trainable:,}", f"{total:,}", cfg.model.mode)
    trainer = classifier_trainer(cfg, with_logging=True, micro_batch=datamodule.batch_size)
    with job_scope(trainer) as final:
        trainer.fit(model, datamodule=datamodule)
        ckpt = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
        metrics = to_floats(trainer.callback_metrics)
        tested = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
        metrics.update(to_floats(tested))
        gather_predictions(trainer, model)
        table = predictions_table(model, datamodule.records("test"))
        if trainer.is_global_zero:
            write_outputs(Path(cfg.paths.output_dir), metrics, table, "test", {
                "task": datamodule.name, "init_from": str(cfg.model_path), "best_ckpt": best,
                "mode": cfg.model.mode, "trainable_parameters": trainable, "epochs": trainer.current_epoch,
                "rc_aug": datamodule.rc_aug, "strand": datamodule.test_strand,
                "global_step": trainer.global_step})
        final.update(metrics)
    return metrics, {"model": model, "datamodule": datamodule, "trainer": trainer,
                     "best_ckpt": best, "predictions": table}


def format_metrics(metrics: dict[str, float], prefix: str) -> str:
    """One line of ``prefix/*`` metrics."""
    keys = ("loss", "acc", "f1", "mcc", "auroc", "auprc")
    return "  ".join(f"{prefix}/{k} {metrics[f'{prefix}/{k}']:.4f}" for k in keys
                     if f"{prefix}/{k}" in metrics)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="finetune")
@report_errors(FinetuneConfig)
def main(cfg: DictConfig) -> float | None:
    """Finetune, test the best checkpoint, print the metrics; returns the optimized metric."""
    metrics, objects = train(cfg)
    if objects["trainer"].is_global_zero:
        print(format_metrics(metrics, "test"))
        print(f"best val/mcc {metrics.get('val/mcc_best', float('nan')):.4f}; "
              f"outputs in {cfg.paths.output_dir}")
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
