"""``genolm-generate``: Hydra entrypoint over :func:`genolm.generate.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import GenerateConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="generate")
@report_errors(GenerateConfig)
def main(cfg: DictConfig) -> None:
    """Generate and print throughput and the JSD-vs-baselines line."""
    from genolm.generate import run

    table, info = run(cfg)
    print(f"{info['n']} sequences of {cfg.length} b in {info['seconds']:.1f} s "
          f"({info['bases_per_s']:.0f} bases/s, sampled after the {info['start']} token); "
          f"mean GC {table['gc'].mean():.3f}")
    for row in info.get("report", []):
        novelty = row.get("longest_match_median")
        print(f"{row['set']:>10}: JSD k=4 {row['jsd_k4']:.4f}  k=6 {row['jsd_k6']:.4f}  "
              f"GC KS {row['gc_ks']:.3f}" + (f"  longest match median {novelty:.0f} b" if novelty else ""))
    print(f"generated.fa, generated.tsv in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
