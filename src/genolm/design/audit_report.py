"""``genolm-optimize audit.enabled=true``: ISM maps, edit tables, logos, optional motifs, ``audit.md``.

Outputs in the run folder: ``audit_ism.npz`` (ISM of every start and final design),
``audit_edits.tsv`` (one row per edit), ``audit_designs.tsv`` (one row per design),
``audit_logos/*.png`` (start vs final ISM contributions of the first ``audit.logos`` designs),
``audit_motifs.tsv`` (TF-MoDISco patterns of the final designs matched to JASPAR; with
``audit.modisco=true``) and ``audit.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from genolm.data.sequences import one_hot
from genolm.design.audit import design_table, edit_table, gained_sites, summarize
from genolm.design.motifs import Motif
from genolm.interpret.ism import classifier_scorer, ism_hypothetical, saturation_mutagenesis
from genolm.interpret.logos import file_stem, plot_attributions
from genolm.interpret.motifs import MODISCO_KEYS, discover_motifs, jaspar_targets, match_motifs
from genolm.io import markdown_table, write_npz_atomic, write_text_atomic, write_tsv_atomic

log = logging.getLogger("genolm.pipelines.optimize")


def _logos(out: Path, ids: list[str], lengths: list[int], start_act: np.ndarray, final_act: np.ndarray,
           n: int) -> list[str]:
    folder = out / "audit_logos"
    folder.mkdir(exist_ok=True)
    paths = []
    for row, name in enumerate(ids[:n]):
        path = folder / f"design{row + 1}_{file_stem(name)}.png"
        plot_attributions({"start": start_act[row, : lengths[row]], "final": final_act[row, : lengths[row]]},
                          name, path)
        paths.append(str(path.relative_to(out)))
    return paths


def discover(finals: list[str], hypothetical: np.ndarray, cfg: DictConfig, out: Path
             ) -> tuple[pd.DataFrame, str]:
    """TF-MoDISco over the final designs' ISM contributions, TOMTOM against ``motifs.path``.

    Returns:
        The match table (written to ``audit_motifs.tsv``; header only without patterns) and a note:
        empty, or why TF-MoDISco gave up (modisco-lite raises ``ValueError`` on too few seqlets).

    """
    settings, note = cfg.audit.modisco_settings, ""
    try:
        patterns = discover_motifs(one_hot(finals), hypothetical, settings.trim,
                                   **{k: settings[k] for k in MODISCO_KEYS})
    except ValueError as err:  # e.g. "Sample weights must contain at least one non-zero number."
        patterns, note = [], f"TF-MoDISco stopped ({err}); too few seqlets in {len(finals)} designs"
        log.warning("audit: %s", note)
    table = match_motifs(patterns, jaspar_targets(cfg.motifs.path, cfg.audit.factors) if patterns else [],
                         cfg.audit.top)
    write_tsv_atomic(table, out / "audit_motifs.tsv", float_format="%.4g")
    return table, note


def write_markdown(path: Path, cfg: DictConfig, info: dict[str, Any], designs: pd.DataFrame,
                   motifs: pd.DataFrame | None, logos: list[str]) -> None:
    """``audit.md``: what was measured, the pooled numbers, the per-design table, logos and motifs."""
    s = info["summary"]
    lines = ["# Design audit", "",
             f"ISM of the oracle's class-{cfg.oracle.target_class} {cfg.audit.output} ({cfg.oracle.strand} "
             f"strand) for {s['designs']} starts and their final designs ({s['edits']} edits) in "
             f"{info['seconds']['ism']:.1f} s. A position's importance is its largest |effect| of a "
             "substitution; `ratio_*` is the mean importance of the edited positions over that of all "
             "positions (random positions: 1), `pct_final` their mean importance percentile (random: 0.5).",
             "", f"- mean ratio, start ISM: {s['mean_ratio_start']:.2f}; final ISM: "
             f"{s['mean_ratio_final']:.2f}; mean percentile (final): {s['mean_pct_final']:.2f}"]
    if "share_edits_in_gained" in s:
        lines += ["- edits inside a site of a JASPAR motif the design gained: "
                  f"{s['share_edits_in_gained']:.1%} "
                  f"(gained sites cover {s['mean_site_cover']:.1%} of a design on average; every gained site "
                  "holds at least one edit by construction)",
                  f"- JASPAR motifs gained per design: {s['mean_gained']:.2f}; by as many random "
                  f"substitutions of the same starts: {s['mean_random_gained']:.2f}"]
    else:
        lines.append("- no motif file (motifs.path): edits not checked against JASPAR sites")
    lines += ["", markdown_table(designs), ""]
    lines += [f"![{p}]({p})" for p in logos]
    if motifs is not None:
        lines += ["", "## Motifs across the final designs (TF-MoDISco + TOMTOM)", "",
                  markdown_table(motifs) if len(motifs) else info.get("modisco_note") or "No pattern.", ""]
    write_text_atomic(path, "\n".join(lines) + "\n")


def run_audit(cfg: DictConfig, module, results: pd.DataFrame, pfms: list[Motif] | None, out: Path
              ) -> dict[str, Any]:
    """Audit every design of ``results`` (``genolm.pipelines.optimize.run``'s table); write the audit files.

    Args:
        cfg: the optimize config (``oracle``, ``audit``, ``motifs``, ``batch_size``, ``device``, ``seed``).
        module: the oracle's classifier.
        results: one row per design with ``id, start, final, start_score, final_score`` (and ``gained``
            when a motif file was scanned).
        pfms: JASPAR motifs, or ``None``.
        out: the run folder.

    Returns:
        Pooled numbers and timings (``summary``, ``seconds``).

    """
    t0 = time.perf_counter()
    ids, starts, finals = results["id"].tolist(), results["start"].tolist(), results["final"].tolist()
    scorer = classifier_scorer(module, cfg.oracle.target_class, cfg.audit.output, cfg.device,
                               cfg.oracle.strand)
    effects, reference = saturation_mutagenesis(scorer, starts + finals, cfg.batch_size, ids + ids,
                                                progress=False)
    start_effects, final_effects = effects[: len(ids)], effects[len(ids) :]
    info: dict[str, Any] = {"seconds": {"ism": time.perf_counter() - t0}}
    write_npz_atomic(out / "audit_ism.npz", ids=np.array(ids), starts=np.array(starts),
                     finals=np.array(finals), lengths=np.array([len(s) for s in starts]),
                     start_effects=start_effects, final_effects=final_effects,
                     start_reference=reference[: len(ids)], final_reference=reference[len(ids) :],
                     bases=np.array(list("ACGT")))
    site_lists = None
    if pfms is not None and "gained" in results:
        site_lists = [gained_sites(f, [g for g in str(gained).split(";") if g and g != "nan"], pfms,
                                   cfg.motifs.rel_threshold)
                      for f, gained in zip(finals, results["gained"], strict=True)]
    edits = edit_table(ids, starts, finals, start_effects, final_effects, site_lists)
    designs = design_table(results, start_effects, final_effects, edits, site_lists,
                           pfms if site_lists is not None else None, cfg.motifs.rel_threshold, cfg.seed)
    write_tsv_atomic(edits, out / "audit_edits.tsv", float_format="%.5g")
    write_tsv_atomic(designs, out / "audit_designs.tsv", float_format="%.5g")
    info["summary"] = summarize(designs)
    onehot = one_hot(starts + finals)
    actual, hypothetical = ism_hypothetical(effects, onehot)
    lengths = [len(s) for s in starts]
    logos = _logos(out, ids, lengths, actual[: len(ids)], actual[len(ids) :], cfg.audit.logos)
    motifs = None
    if cfg.audit.modisco:
        t1 = time.perf_counter()
        motifs, info["modisco_note"] = discover(finals, hypothetical[len(ids) :], cfg, out)
        info["seconds"]["modisco"] = time.perf_counter() - t1
    info["seconds"]["total"] = time.perf_counter() - t0
    write_markdown(out / "audit.md", cfg, info, designs, motifs, logos)
    log.info("audit: %s", info["summary"])
    return info
