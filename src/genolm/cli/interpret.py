"""``genolm-interpret``: Hydra entrypoint over :func:`genolm.interpret.pipeline.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import InterpretConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="interpret")
@report_errors(InterpretConfig)
def main(cfg: DictConfig) -> None:
    """Explain the model and print timings and the motifs' best JASPAR matches."""
    from genolm.interpret.pipeline import run

    table, info = run(cfg)
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in info["seconds"].items())
    print(f"{info['sequences']} sequences ({info['bases']:,} bases) explained: {secs}")
    for row in table[table["rank"] == 1].itertuples(index=False) if len(table) else []:
        print(f"{row.pattern} ({row.n_seqlets} seqlets, {row.consensus}): best match {row.motif_id} "
              f"{row.motif_name} [{row.factors}] p={row.p_value:.2g} q={row.q_value:.2g}")
    if "patterns" in info and not info["patterns"]:
        print("no motif pattern found (no seqlet cluster passed modisco's thresholds)")
    print(f"report.md and outputs in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
