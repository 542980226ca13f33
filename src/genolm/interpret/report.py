"""``report.md`` of ``genolm-interpret``: what was explained, how long it took, motifs and logos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from genolm.io import write_text_atomic


def motif_summary(table: pd.DataFrame, q_threshold: float) -> pd.DataFrame:
    """One row per pattern: its best match, p/q-values and whether q is below ``q_threshold``."""
    best = table[table["rank"] == 1].copy()
    best["significant"] = best["q_value"] < q_threshold
    return best[["pattern", "n_seqlets", "consensus", "motif_id", "motif_name", "factors", "p_value",
                 "q_value", "strand", "significant"]]


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (floats in 3 significant digits)."""
    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n"
                          for row in frame.itertuples(index=False))


def write_report(path: Path, cfg: DictConfig, info: dict[str, Any], table: pd.DataFrame,
                 images: list[tuple[str, str]], motif_images: dict[str, str]) -> None:
    """Write ``report.md``."""
    label = f" (label {cfg.input.label})" if cfg.input.label is not None else ""
    src = cfg.input.fasta or f"{cfg.input.csv}{label}"
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in info["seconds"].items())
    lines = ["# genolm-interpret report", "",
             f"- model: `{cfg.model_path}` ({info['kind']}); score: {info['score']}",
             f"- sequences: {info['sequences']} from `{src}` ({info['bases']:,} bases); "
             f"mean score {info['reference_mean']:.4f}",
             f"- methods: {', '.join(cfg.methods)}; time: {secs}"]
    if "ism_mutants_per_s" in info:
        lines.append(f"- ISM: {info['ism_mutants_per_s']:,.0f} mutants/s (`ism.npz`: effects N x 4 x L, "
                     "score(mutant) - score(sequence), rows A C G T)")
    if "ig_formulation" in info:
        lines.append(f"- integrated gradients ({cfg.ig.steps} steps) over the {info['ig_formulation']}; "
                     f"median |convergence delta| {info['ig_delta_median_abs']:.3g} (score units)")
    lines += ["", "Contributions (`attributions.npz`): `ism_actual` / `ism_hypothetical` are mean-centred "
              "ISM effects (N x L x 4), `ig_per_base` (N x L) and, for single-base tokenizers, "
              "`ig_actual` / `ig_hypothetical` (one-hot IG, uniform-base baseline).", ""]
    if cfg.modisco.enabled:
        lines += ["## Motifs", "",
                  f"TF-MoDISco on the {cfg.modisco.scores} hypothetical contributions found "
                  f"{info['patterns']} pattern(s); best TOMTOM match of each in `{cfg.tomtom.motifs}` "
                  f"(q-values: Benjamini-Hochberg over all targets of a pattern; all top "
                  f"{cfg.tomtom.top} matches in `motifs.tsv`).", ""]
        if len(table):
            lines += [markdown(motif_summary(table, cfg.tomtom.q_threshold)), ""]
            hits = info["significant"]
            lines.append(f"Patterns whose best match has q < {cfg.tomtom.q_threshold}: " + (
                ", ".join(f"{h['pattern']} -> {h['motif_id']} {h['motif_name']} (q={h['q_value']:.2g})"
                          for h in hits) if hits else "none") + ".")
            lines.append("")
            lines += [f"![{name}]({img})" for name, img in motif_images.items()]
        else:
            lines.append("No pattern: no cluster of seqlets passed modisco's size and information-content "
                         "thresholds (too few seqlets: more sequences or a lower "
                         "`modisco.min_metacluster_size`; or seqlets that share no motif).")
        lines.append("")
    if images:
        lines += ["## Sequences the model scores highest", ""]
        lines += [f"![{name}]({img})" for name, img in images]
    write_text_atomic(path, "\n".join(lines) + "\n")
