"""``genolm-eval``: Hydra entrypoint over :func:`genolm.finetune.evaluate`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import EvalConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
@report_errors(EvalConfig)
def main(cfg: DictConfig) -> None:
    """Evaluate and print the split's metrics."""
    from genolm.finetune import evaluate, format_metrics

    metrics, _ = evaluate(cfg)
    print(format_metrics(metrics, cfg.split))
    print(f"metrics.json and predictions_{cfg.split}.tsv in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
