"""``genolm-pretrain``: Hydra entrypoint over :func:`genolm.pretrain.train`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import PretrainConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="pretrain")
@report_errors(PretrainConfig)
def main(cfg: DictConfig) -> float | None:
    """Pretrain and print the summary; returns the optimized metric for sweepers."""
    from genolm.pretrain import format_summary, train

    metrics, objects = train(cfg)
    if objects["trainer"].is_global_zero:
        print(format_summary(metrics, objects))
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
