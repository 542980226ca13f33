"""``genolm-interpret``: ISM, integrated gradients and TF-MoDISco motifs matched to JASPAR, for a model.

:func:`run` reads the sequences, loads the model (a classifier: ISM of the target-class logit or
probability, and IG; a causal LM: ISM of the total log-likelihood), writes ``ism.npz`` and
``attributions.npz``, runs TF-MoDISco on the chosen hypothetical contributions, matches every
pattern against JASPAR with TOMTOM (``motifs.tsv``), draws logos and writes ``report.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from genolm.checkpoints import check_kind, load_causal_lm, load_classifier
from genolm.config_schema import InterpretConfig
from genolm.data.labeled import read_labeled_csv
from genolm.data.sequences import check_dna, iter_records, one_hot
from genolm.data.tokenizers import encode_many
from genolm.errors import GenolmError
from genolm.inference.batches import max_positions, resolve_device
from genolm.interpret.gradients import base_token_ids, classifier_integrated_gradients
from genolm.interpret.ism import (
    classifier_scorer,
    ism_hypothetical,
    lm_scorer,
    saturation_mutagenesis,
)
from genolm.interpret.ism_prefix import PrefixClassifierScorer, PrefixLMScorer, prefix_ism_supported
from genolm.interpret.logos import file_stem, plot_attributions, plot_motif_match
from genolm.interpret.motifs import MODISCO_KEYS, discover_motifs, jaspar_targets, match_motifs
from genolm.interpret.report import write_report
from genolm.io import write_json_atomic, write_npz_atomic, write_tsv_atomic
from genolm.models.fast.switch import use_fast
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.interpret")


def read_inputs(cfg: DictConfig) -> tuple[list[str], list[str]]:
    """``(ids, sequences)`` from ``input.fasta`` or ``input.csv`` (optionally one label), first ``n``."""
    src = cfg.input
    if src.fasta:
        ids, seqs = [], []
        for name, seq in iter_records(src.fasta):
            check_dna(seq, src.fasta, name)
            ids.append(name)
            seqs.append(seq.upper())
            if src.n and len(seqs) >= src.n:
                break
    else:
        frame = read_labeled_csv(src.csv)
        if src.label is not None:
            frame = frame[frame["label"] == src.label]
        ids, seqs = frame["id"].tolist()[: src.n], frame["sequence"].tolist()[: src.n]
    empty = next((i for i, s in zip(ids, seqs, strict=True) if not s), None)
    if empty is not None:
        raise GenolmError(f"input: record '{empty}' is empty")
    if not seqs:
        raise GenolmError(f"input: no sequences left (input.label={src.label})")
    return ids, seqs


def model_kind(path: str | Path) -> str:
    """``classifier`` or ``causal_lm``, as the checkpoint declares."""
    try:
        check_kind(path, "classifier")
        return "classifier"
    except GenolmError as err:
        first = err
    try:
        check_kind(path, "causal_lm")
        return "causal_lm"
    except GenolmError:
        raise first from None


def check_lengths(tokenizer, ids: list[str], seqs: list[str], max_positions: int) -> None:
    """One error naming the first sequence that tokenizes to more tokens than the model's positions."""
    for name, seq, row in zip(ids, seqs, encode_many(tokenizer, seqs), strict=True):
        if len(row) > max_positions:
            raise GenolmError(f"sequence '{name}' ({len(seq)} b) tokenizes to {len(row)} tokens, more than "
                              f"the model's {max_positions} positions; use shorter sequences")


def _logos(out: Path, ids: list[str], order: np.ndarray, tracks: dict[str, np.ndarray], lengths: np.ndarray,
           n: int) -> list[tuple[str, str]]:
    images = []
    (out / "logos").mkdir(exist_ok=True)
    for rank, row in enumerate(order[:n], start=1):
        path = out / "logos" / f"seq{rank}_{file_stem(ids[row])}.png"
        plot_attributions({k: v[row, : lengths[row]] for k, v in tracks.items()}, ids[row], path)
        images.append((ids[row], str(path.relative_to(out))))
    return images


def motif_outputs(onehot: np.ndarray, hypothetical: np.ndarray, cfg: DictConfig, targets: list,
                  out: Path, info: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    """TF-MoDISco + TOMTOM: write ``motifs.tsv`` and each pattern's logo beside its best match.

    Args:
        onehot: ``(N, L, 4)`` sequences.
        hypothetical: ``(N, L, 4)`` hypothetical contributions.
        cfg: the run config (``modisco``, ``tomtom``).
        targets: database motifs (:func:`genolm.interpret.motifs.jaspar_targets`).
        out: the run folder.
        info: run summary; gets ``patterns``, ``significant`` and the step timings.

    Returns:
        The match table and ``{pattern: logo path relative to out}``.

    """
    t0 = time.perf_counter()
    patterns = discover_motifs(onehot, hypothetical, cfg.modisco.trim,
                               **{k: cfg.modisco[k] for k in MODISCO_KEYS})
    info["seconds"]["modisco"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = match_motifs(patterns, targets, cfg.tomtom.top)
    info["seconds"]["tomtom"] = time.perf_counter() - t0
    write_tsv_atomic(table, out / "motifs.tsv", float_format="%.4g")
    by_id, images = {t.motif_id: t for t in targets}, {}
    (out / "logos").mkdir(exist_ok=True)
    for pat in patterns:
        best = table[(table["pattern"] == pat.name) & (table["rank"] == 1)].iloc[0]
        match = by_id[best["motif_id"]]
        path = out / "logos" / f"motif_{pat.name}.png"
        plot_motif_match(pat.cwm, pat.ppm, match.ppm, f"{pat.name} ({pat.n_seqlets} seqlets)",
                         f"best JASPAR match {match.motif_id} {match.name} (q={best['q_value']:.2g})",
                         best["strand"] == "-", path, int(best["offset"]))
        images[pat.name] = str(path.relative_to(out))
    best = table[table["rank"] == 1]
    info["patterns"] = len(patterns)
    info["significant"] = best.loc[best["q_value"] < cfg.tomtom.q_threshold,
                                   ["pattern", "motif_id", "motif_name", "q_value"]].to_dict("records")
    return table, images


def run(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Explain the model on the input sequences; write every output into the run folder."""
    t_start = time.perf_counter()
    ids, seqs = read_inputs(cfg)
    kind = model_kind(cfg.model_path)
    if kind == "causal_lm" and "ig" in cfg.methods:
        raise GenolmError(f"{cfg.model_path}: a causal LM: integrated gradients need a classifier; "
                          "use methods=[ism]")
    targets = jaspar_targets(cfg.tomtom.motifs, cfg.tomtom.factors) if cfg.modisco.enabled else []
    if kind == "classifier":
        module = load_classifier(cfg.model_path, trust_remote_code=cfg.get("trust_remote_code", False))
        net, tok, max_pos = module.net, module.tokenizer, module.max_positions
        use_fast(net, cfg.fast, resolve_device(cfg.device))
        # a causal Mixtral classifier: ISM shares each reference's token prefix with its mutants
        fast = PrefixClassifierScorer if prefix_ism_supported(net) else classifier_scorer
        scorer = fast(module, cfg.target_class, cfg.output, cfg.device)
        what = f"class-{cfg.target_class} {cfg.output}"
    else:
        net, tok = load_causal_lm(cfg.model_path, cfg.get("trust_remote_code", False))
        use_fast(net, cfg.fast, resolve_device(cfg.device))
        max_pos = max_positions(net)
        fast = PrefixLMScorer if prefix_ism_supported(net) else lm_scorer
        scorer, what = fast(net, tok, cfg.device), "total log-likelihood (nats)"
    check_lengths(tok, ids, seqs, max_pos)
    if cfg.modisco.enabled and cfg.modisco.scores == "ig" and base_token_ids(tok) is None:
        raise GenolmError("modisco.scores=ig needs hypothetical contributions, which the one-hot IG gives "
                          "only for a tokenizer with one token per base; this one has multi-base tokens: "
                          "use modisco.scores=ism")
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(s) for s in seqs])
    onehot = one_hot(seqs)
    arrays: dict[str, np.ndarray] = {"ids": np.array(ids), "lengths": lengths, "one_hot": onehot}
    info: dict[str, Any] = {"sequences": len(seqs), "kind": kind, "score": what, "seconds": {},
                            "bases": int(lengths.sum())}
    tracks: dict[str, np.ndarray] = {}
    reference = None
    if "ism" in cfg.methods:
        t0 = time.perf_counter()
        effects, reference = saturation_mutagenesis(scorer, seqs, cfg.batch_size, ids, cfg.progress)
        info["seconds"]["ism"] = time.perf_counter() - t0
        info["ism_mutants_per_s"] = 3 * int(lengths.sum()) / info["seconds"]["ism"]
        write_npz_atomic(out / "ism.npz", ids=np.array(ids), sequences=np.array(seqs), lengths=lengths,
                  effects=effects, reference=reference, bases=np.array(list("ACGT")))
        arrays["ism_actual"], arrays["ism_hypothetical"] = ism_hypothetical(effects, onehot)
        tracks["ISM (mean-centred effect at the observed base)"] = arrays["ism_actual"]
    if "ig" in cfg.methods:
        t0 = time.perf_counter()
        got = classifier_integrated_gradients(net, tok, seqs, cfg.target_class, cfg.output, cfg.ig.steps,
                                              cfg.progress)
        info["seconds"]["ig"] = time.perf_counter() - t0
        info["ig_formulation"] = "one-hot" if "hypothetical" in got else "input embeddings"
        info["ig_delta_median_abs"] = float(np.median(np.abs(got["delta"])))
        arrays.update({f"ig_{k}": v for k, v in got.items()})
        tracks[f"IG ({info['ig_formulation']})"] = got.get("actual", onehot * got["per_base"][..., None])
    write_npz_atomic(out / "attributions.npz", **arrays)
    if reference is None:
        reference = np.concatenate([scorer(seqs[lo : lo + cfg.batch_size])
                                    for lo in range(0, len(seqs), cfg.batch_size)])
    order = np.argsort(-reference, kind="stable")
    info["reference_mean"] = float(np.mean(reference))
    images = _logos(out, ids, order, tracks, lengths, cfg.logos.n)
    table, motif_images = pd.DataFrame(), {}
    if cfg.modisco.enabled:
        table, motif_images = motif_outputs(onehot, arrays[f"{cfg.modisco.scores}_hypothetical"], cfg,
                                            targets, out, info)
    info["seconds"]["total"] = time.perf_counter() - t_start
    write_report(out / "report.md", cfg, info, table, images, motif_images)
    write_json_atomic(out / "metrics.json", info)
    return table, info


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="interpret")
@report_errors(InterpretConfig)
def main(cfg: DictConfig) -> None:
    """Explain the model and print timings and the motifs' best JASPAR matches."""
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
