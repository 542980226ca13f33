"""``genolm-score``: Hydra entrypoint over :func:`genolm.score.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import ScoreConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="score")
@report_errors(ScoreConfig)
def main(cfg: DictConfig) -> None:
    """Score variants and print throughput and per-score AUROCs."""
    from genolm.score import run

    scores, info = run(cfg)
    print(f"{info['pairs']} pairs scored in {info['seconds']:.1f} s ({info['pairs_per_s']:.0f} pairs/s)")
    for row in info.get("report", []):
        print(f"{row['score']:>7}: AUROC {cfg.report.positive} vs {cfg.report.negative} "
              f"{row['auroc']:.3f} (95% CI {row['ci_low']:.3f}-{row['ci_high']:.3f})")
    print(f"scores.tsv and report in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
