"""``genolm-generate``: sample DNA from a causal LM, write FASTA + TSV, optionally a realism report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig

from genolm.checkpoints import load_causal_lm
from genolm.config_schema import GenerateConfig
from genolm.data.sequences import iter_records
from genolm.errors import GenolmError
from genolm.generation.realism import NoveltyIndex
from genolm.generation.report import baselines, plot_realism, real_windows, realism_table
from genolm.generation.sampling import generate_dna
from genolm.inference.batches import resolve_device
from genolm.inference.lm_bits import resolve_start
from genolm.io import markdown_table, write_fasta_atomic, write_json_atomic, write_tsv_atomic
from genolm.models.fast.switch import use_fast
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.pipelines.generate")


def read_dna(paths: list[str], records: list[str] | None) -> list[str]:
    """Records (optionally only the named ones) of FASTA files, upper case."""
    seqs = [seq.upper() for path in paths for name, seq in iter_records(path)
            if not records or name in records]
    if not seqs:
        raise GenolmError(f"{paths}: no sequence found (records filter: {records})")
    return seqs


def report(cfg: DictConfig, generated: list[str], out: Path, start: str) -> pd.DataFrame:
    """Compare generated DNA with real held-out windows, i.i.d. and Markov baselines.

    ``start`` (the token sampling began from) is only named in ``report.md``.
    """
    rc = cfg.report
    train = read_dna(list(rc.train_fasta), list(rc.train_records or []))
    reference = real_windows(read_dna(list(rc.reference_fasta), list(rc.reference_records or [])),
                             cfg.length, len(generated), cfg.seed)
    sets = {"generated": generated, **baselines(train, len(generated), cfg.length, rc.markov_order, cfg.seed)}
    table = realism_table(sets, reference, NoveltyIndex(train), rc.min_match)
    plot_realism({"real held-out": reference, **sets}, table, out)
    write_tsv_atomic(table, out / "report.tsv", "%.5g")
    (out / "report.md").write_text(
        f"# Generated vs real DNA\n\nModel `{cfg.model_path}`, {len(generated)} sequences of {cfg.length} b, "
        f"temperature {cfg.temperature}, top-k {cfg.top_k}, top-p {cfg.top_p}, start token {start}. "
        f"JSD in bits to "
        f"{len(reference)} real held-out windows; novelty = longest exact match against the "
        "training corpus (both strands).\n\n" + markdown_table(table))
    return table


def run(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Generate, write ``generated.fa`` and ``generated.tsv``, and the report when asked."""
    start_tok = resolve_start(cfg.start, cfg.model_path)
    model, tokenizer = load_causal_lm(cfg.model_path, cfg.get("trust_remote_code", False))
    use_fast(model, cfg.fast, resolve_device(cfg.device))
    log.info("sampling after the %s token", start_tok)
    start = time.perf_counter()
    table = generate_dna(model, tokenizer, cfg.n, cfg.length, prompt=cfg.prompt or "", start=start_tok,
                         temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                         repetition_penalty=cfg.repetition_penalty, greedy=cfg.greedy,
                         seed=cfg.seed, batch_size=cfg.batch_size, device=cfg.device)
    seconds = time.perf_counter() - start
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_fasta_atomic(zip(table["id"], table["sequence"], strict=True), out / "generated.fa")
    write_tsv_atomic(table.drop(columns="sequence"), out / "generated.tsv")
    info: dict[str, Any] = {"n": len(table), "seconds": seconds, "start": start_tok,
                            "bases_per_s": table["length"].sum() / seconds}
    if cfg.report.enabled:
        info["report"] = report(cfg, table["sequence"].tolist(), out, start_tok).to_dict(orient="records")
    write_json_atomic(out / "metrics.json", info)
    return table, info


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="generate")
@report_errors(GenerateConfig)
def main(cfg: DictConfig) -> None:
    """Generate and print throughput and the JSD-vs-baselines line."""
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
