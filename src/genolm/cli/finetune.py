"""``genolm-finetune``: Hydra entrypoint over :func:`genolm.finetune.train`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import FinetuneConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="finetune")
@report_errors(FinetuneConfig)
def main(cfg: DictConfig) -> float | None:
    """Finetune, test the best checkpoint, print the metrics; returns the optimized metric."""
    from genolm.finetune import format_metrics, train

    metrics, objects = train(cfg)
    if objects["trainer"].is_global_zero:
        print(format_metrics(metrics, "test"))
        print(f"best val/mcc {metrics.get('val/mcc_best', float('nan')):.4f}; "
              f"outputs in {cfg.paths.output_dir}")
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
