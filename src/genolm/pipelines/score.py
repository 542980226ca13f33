"""``genolm-score``: zero-shot variant scoring from a config (inputs -> scores.tsv -> report).

The model kind picks the scores: a causal LM gets :func:`genolm.scoring.effects.score_variants`
(sequence log-likelihood ratio), a masked LM (``*ForMaskedLM``)
:func:`genolm.scoring.masked.score_masked_variants` (masked-marginal ratio); both write the same
columns.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig

from genolm.checkpoints import lm_kind, load_causal_lm, load_masked_lm
from genolm.config_schema import ScoreConfig
from genolm.errors import GenolmError
from genolm.inference.batches import resolve_device
from genolm.inference.strands import on_strands
from genolm.io import write_json_atomic, write_tsv_atomic
from genolm.models.fast.switch import use_fast
from genolm.scoring.effects import score_variants
from genolm.scoring.masked import score_masked_variants
from genolm.scoring.report import group_report, markdown_report, plot_groups
from genolm.scoring.variants import read_fasta_pairs, read_table_pairs, read_vcf_windows
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.pipelines.score")


def load_inputs(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """All configured variant pairs: FASTA pairs, a table, and/or VCF windows."""
    frames, skipped = [], {}
    for pair in cfg.inputs or []:
        frames.append(read_fasta_pairs(pair.ref, pair.alt, pair.get("group") or "", cfg.limit))
    if cfg.get("table"):
        frames.append(read_table_pairs(cfg.table, cfg.limit))
    if cfg.get("vcf"):
        if not cfg.get("genome"):
            raise GenolmError("score: vcf needs genome= (a FASTA, plain or BGZF)")
        windows, skipped = read_vcf_windows(cfg.vcf, cfg.genome, cfg.window,
                                            Path(cfg.paths.cache_dir) / "faidx", cfg.limit)
        frames.append(windows)
    if not frames:
        raise GenolmError("score: no input; set inputs=[{ref:..., alt:..., group:...}], table= or vcf=")
    return pd.concat(frames, ignore_index=True), skipped


def run(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score every configured pair and write ``scores.tsv``, plus the group report when asked.

    ``cfg.strand``: ``forward`` scores the pairs as given, ``reverse`` their reverse-complemented
    pairs, ``average`` the mean of both strands' scores.
    """
    pairs, skipped = load_inputs(cfg)
    remote = cfg.get("trust_remote_code", False)
    kind = lm_kind(cfg.model_path)
    load, scorer = ((load_masked_lm, score_masked_variants) if kind == "masked_lm"
                    else (load_causal_lm, score_variants))
    model, tokenizer = load(cfg.model_path, remote)
    use_fast(model, cfg.fast, resolve_device(cfg.device))  # Mixtral only; others stay as they are
    start = time.perf_counter()
    strand = cfg.strand

    def score(ref: list[str], alt: list[str]) -> pd.DataFrame:
        return scorer(model, tokenizer, ref, alt, ids=pairs["id"].tolist(),
                              groups=pairs["group"].tolist(), scores=list(cfg.scores),
                              pooling=cfg.pooling, batch_size=cfg.batch_size, device=cfg.device,
                              workers=cfg.workers)

    scores = on_strands(score, strand, pairs["ref"].tolist(), pairs["alt"].tolist())
    seconds = time.perf_counter() - start
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv_atomic(scores, out / "scores.tsv")
    info: dict[str, Any] = {"pairs": len(scores), "seconds": seconds,
                            "pairs_per_s": len(scores) / seconds, "skipped": skipped,
                            "ckpt_path": str(cfg.model_path), "kind": kind, "pooling": cfg.pooling,
                            "strand": strand}
    columns = [c for c in ("l2", "cosine", "llr") if c in scores]
    if cfg.report.enabled and scores["group"].nunique() >= 2:
        pos, neg = cfg.report.positive, cfg.report.negative
        table = group_report(scores, columns, pos, neg, cfg.report.n_boot, cfg.seed)
        write_tsv_atomic(table, out / "report.tsv")
        header = (f"# Zero-shot variant scores: {pos} vs {neg}\n\nModel `{cfg.model_path}`, pooling "
                  f"`{cfg.pooling}`, strand `{strand}`, {len(scores)} pairs scored in {seconds:.1f} s.")
        (out / "report.md").write_text(markdown_report(table, pos, neg, header))
        plot_groups(scores, columns, out / "report.png")
        info["report"] = table.to_dict(orient="records")
    write_json_atomic(out / "metrics.json", info)
    return scores, info


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="score")
@report_errors(ScoreConfig)
def main(cfg: DictConfig) -> None:
    """Score variants and print throughput and per-score AUROCs."""
    scores, info = run(cfg)
    print(f"{info['pairs']} pairs scored in {info['seconds']:.1f} s ({info['pairs_per_s']:.0f} pairs/s)")
    for row in info.get("report", []):
        print(f"{row['score']:>7}: AUROC {cfg.report.positive} vs {cfg.report.negative} "
              f"{row['auroc']:.3f} (95% CI {row['ci_low']:.3f}-{row['ci_high']:.3f})")
    print(f"scores.tsv and report in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
