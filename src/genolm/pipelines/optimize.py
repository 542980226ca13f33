"""``genolm-optimize``: design DNA that a finetuned classifier scores high, under constraints."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from genolm.checkpoints import load_classifier
from genolm.config_schema import OptimizeConfig
from genolm.data.labeled import read_labeled_csv
from genolm.data.sequences import iter_records
from genolm.design.constraints import Constraints
from genolm.design.motifs import read_jaspar_pfm
from genolm.design.oracle import Oracle, classifier_oracle, combine, lm_naturalness
from genolm.design.report import gained_summary, motif_changes, plot_trajectory
from genolm.design.search import search
from genolm.errors import GenolmError
from genolm.inference.batches import resolve_device
from genolm.io import write_fasta_atomic, write_json_atomic, write_tsv_atomic
from genolm.models.fast.switch import use_fast
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.pipelines.optimize")


def start_sequences(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """``(ids, sequences)`` from a FASTA, a labelled CSV (optionally one label) or random DNA."""
    s = cfg.start
    if s.fasta:
        records = list(iter_records(s.fasta))
        ids, seqs = [r[0] for r in records], [r[1] for r in records]
    elif s.csv:
        frame = read_labeled_csv(s.csv)
        if s.label is not None:
            frame = frame[frame["label"] == s.label]
        ids, seqs = frame["id"].tolist(), frame["sequence"].tolist()
    elif s.random_length:
        rng = np.random.default_rng(cfg.seed)
        seqs = ["".join(rng.choice(list("ACGT"), s.random_length)) for _ in range(s.n or 1)]
        ids = [f"random{i + 1}" for i in range(len(seqs))]
    else:
        raise GenolmError("optimize: set start.fasta, start.csv or start.random_length")
    if s.n:
        ids, seqs = ids[: s.n], seqs[: s.n]
    if not seqs:
        raise GenolmError("optimize: no start sequences left (check start.label)")
    return ids, seqs


def build_oracle(cfg: DictConfig, module=None) -> Oracle:
    """Classifier oracle (``module``, or loaded from ``model_path``), plus the optional LM term."""
    remote = cfg.get("trust_remote_code", False)
    module = load_classifier(cfg.model_path, trust_remote_code=remote) if module is None else module
    use_fast(module.net, cfg.fast, resolve_device(cfg.device))
    fns = [classifier_oracle(module, cfg.oracle.target_class, cfg.oracle.output, cfg.device,
                             strand=cfg.oracle.strand)]
    sign = 1.0 if cfg.oracle.maximize else -1.0
    if cfg.naturalness.weight:
        from genolm.checkpoints import load_causal_lm

        model, tok = load_causal_lm(cfg.naturalness.model_path, remote)
        use_fast(model, cfg.fast, resolve_device(cfg.device))
        # the oracle flips the sign for minimisation; keep naturalness rewarded either way
        fns.append(lm_naturalness(model, tok, sign * cfg.naturalness.weight, cfg.device))
    return Oracle(combine(*fns), cfg.batch_size, cfg.oracle.maximize)


def run(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Design from every start; write designs.fa, results.tsv, trajectory.tsv/.png, motifs_gained.tsv.

    With ``audit.enabled``, also the audit files (:mod:`genolm.design.audit_report`).
    """
    constraints = Constraints(**{k: (tuple(v) if k == "gc_range" else v)
                                 for k, v in instantiate(cfg.constraints, _convert_="all").items()})
    ids, seqs = start_sequences(cfg)
    pfms = read_jaspar_pfm(cfg.motifs.path) if cfg.motifs.path else None  # a bad file fails before the search
    for name, seq in zip(ids, seqs, strict=True):
        constraints.check_start(seq, name)
    module = load_classifier(cfg.model_path, trust_remote_code=cfg.get("trust_remote_code", False))
    oracle = build_oracle(cfg, module)
    algorithm = instantiate(cfg.algorithm)
    t0 = time.perf_counter()
    results, trajectory = search(oracle, seqs, algorithm, constraints, ids, cfg.seed)
    seconds = time.perf_counter() - t0
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if pfms is not None:
        changes = motif_changes(results, pfms, cfg.motifs.rel_threshold)
        results = results.merge(changes, on="id")
        gained_summary(changes).to_csv(out / "motifs_gained.tsv", sep="\t", header=["designs"])
    write_tsv_atomic(trajectory, out / "trajectory.tsv")
    write_tsv_atomic(results, out / "results.tsv")
    headers = [f"{r.id} start={r.start_score:.4f} final={r.final_score:.4f} edits={r.edits}"
               for r in results.itertuples(index=False)]
    write_fasta_atomic(zip(headers, results["final"], strict=True), out / "designs.fa")
    plot_trajectory(trajectory, out / "trajectory.png")
    info = {"starts": len(results), "seconds": seconds, "oracle_calls": int(results["oracle_calls"].sum()),
            "mean_start": float(results["start_score"].mean()),
            "mean_final": float(results["final_score"].mean())}
    audit = cfg.get("audit")
    if audit is not None and audit.enabled:
        from genolm.design.audit_report import run_audit

        info["audit"] = run_audit(cfg, module, results, pfms, out)
    write_json_atomic(out / "metrics.json", info)
    return results, info


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="optimize")
@report_errors(OptimizeConfig)
def main(cfg: DictConfig) -> None:
    """Design and print start -> final scores."""
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
