"""``genolm-eval``: score a trained classifier on one split of a labelled task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from genolm.checkpoints import load_classifier
from genolm.config_schema import EvalConfig
from genolm.data.classification import LabeledSequenceDataModule
from genolm.pipelines.finetune import classifier_trainer, format_metrics, predictions_table, write_outputs
from genolm.utils import config_dir, report_errors, to_floats


def evaluate(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Score a trained classifier on one split of ``cfg.data`` on ``cfg.strand``.

    Writes the same files as finetuning.
    """
    datamodule: LabeledSequenceDataModule = instantiate(cfg.data)
    datamodule.load()
    model = load_classifier(cfg.model_path, datamodule.num_labels, cfg.get("trust_remote_code", False))
    model.fast = cfg.fast  # resolved for the trainer's device in setup()
    datamodule.set_tokenizer(model.tokenizer, model.max_positions)
    datamodule.setup("test")
    model.test_prefix = cfg.split
    trainer = classifier_trainer(cfg, with_logging=False)
    strand = cfg.strand
    loader = datamodule.loader(cfg.split, strand=strand)
    metrics = to_floats(trainer.test(model, dataloaders=loader, verbose=False)[0])
    table = predictions_table(model, datamodule.records(cfg.split))
    write_outputs(Path(cfg.paths.output_dir), metrics, table, cfg.split, {
        "task": datamodule.name, "ckpt_path": str(cfg.model_path), "split": cfg.split,
        "strand": strand, "records": len(table)})
    return metrics, {"model": model, "datamodule": datamodule, "predictions": table}


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
@report_errors(EvalConfig)
def main(cfg: DictConfig) -> None:
    """Evaluate and print the split's metrics."""
    metrics, _ = evaluate(cfg)
    print(format_metrics(metrics, cfg.split))
    print(f"metrics.json and predictions_{cfg.split}.tsv in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
