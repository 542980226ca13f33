"""``genolm-optimize``: Hydra entrypoint over :func:`genolm.optimize.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import OptimizeConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="optimize")
@report_errors(OptimizeConfig)
def main(cfg: DictConfig) -> None:
    """Design and print start -> final scores."""
    from genolm.optimize import run

    results, info = run(cfg)
    for row in results.itertuples(index=False):
        names = [g for g in str(getattr(row, "gained", "")).split(";") if g]
        gained = f"  motifs gained: {len(names)} ({', '.join(n.split('.')[-1] for n in names[:4])}" \
            f"{', ...' if len(names) > 4 else ''})" if names else ""
        print(f"{row.id}: {row.start_score:.4f} -> {row.final_score:.4f} ({row.edits} edits){gained}")
    print(f"mean {info['mean_start']:.4f} -> {info['mean_final']:.4f}; {info['oracle_calls']} oracle calls "
          f"in {info['seconds']:.1f} s; outputs in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
