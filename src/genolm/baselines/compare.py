"""A causal LM beside order-k Markov chains on the same windows: the table and the plot.

Used at the end of every pretraining run (validation chunks of its corpus, chains fitted on its
training chunks) and by ``genolm-eval-lm`` (any FASTA, chains fitted on a FASTA the user names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.baselines.markov import MarkovChains
from genolm.data.sequences import reverse_complement
from genolm.inference.lm_bits import total_bits_per_base, window_bits
from genolm.io import atomic_file


def lm_vs_markov(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, train: Sequence[str],
                 windows: Sequence[str], max_order: int = 10, alpha: float = 1.0, start: str = "sep",
                 batch_size: int = 64) -> dict[str, Any]:
    """Bits per base of ``model`` and of Markov chains of every order on ``windows``.

    Args:
        model: the causal LM.
        tokenizer: its tokenizer.
        train: windows the chains are fitted on (the LM's training DNA, for a fair comparison).
        windows: held-out windows both are scored on, each on its own.
        max_order: chains of orders ``0..max_order``.
        alpha: add-``alpha`` smoothing of the chains.
        start: token before each window (see :func:`genolm.inference.lm_bits.start_token`).
        batch_size: windows per forward pass.

    Returns:
        ``lm_bits_per_base``, ``markov`` ({order: bits/base}, chains fitted on the training
        windows as given), ``markov_both_strands`` (fitted on them and their reverse complements,
        the fair bar for an LM trained with ``data.rc_aug``), ``best_order`` and ``best_strands``
        of the best chain of either kind, ``markov_bits_per_base`` (its figure), ``delta`` (LM
        minus best chain; negative: the LM wins), ``windows``, ``bases`` and the per-window
        ``table``.

    """
    table = window_bits(model, tokenizer, windows, start=start, batch_size=batch_size)
    chains = MarkovChains(max_order, alpha).fit(train)
    markov = chains.bits_per_base(windows)
    both = MarkovChains(max_order, alpha).fit(train).fit(reverse_complement(w) for w in train)
    markov_both = both.bits_per_base(windows)
    best = min(markov, key=markov.get)
    best_both = min(markov_both, key=markov_both.get)
    lm = total_bits_per_base(table)
    top = min(markov[best], markov_both[best_both])
    return {"lm_bits_per_base": lm, "markov": markov, "markov_both_strands": markov_both,
            "best_order": best if markov[best] <= markov_both[best_both] else best_both,
            "best_strands": "forward" if markov[best] <= markov_both[best_both] else "both",
            "markov_bits_per_base": top, "delta": lm - top,
            "windows": len(windows), "bases": int(table["bases"].sum()),
            "train_bases": chains.bases_fitted, "table": table}


def _plot_curve(curve: Sequence[tuple[int, float]], result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if curve:
        seen, bits = zip(*curve, strict=True)
        ax.plot(seen, bits, marker="o", ms=3, label="LM, validation loop (packed)")
        ax.scatter([seen[-1]], [result["lm_bits_per_base"]], color="C0", marker="*", s=120, zorder=3,
                   label="LM, windows scored alone")
    ax.axhline(result["markov_bits_per_base"], color="C3", ls="--",
               label=f"best Markov chain (order {result['best_order']})")
    ax.set(xlabel="training bases seen", ylabel="held-out bits per base", title="Learning curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def report_markdown(result: dict[str, Any], title: str, where: str) -> str:
    """``lm_vs_baselines.md``: the LM's line and one line per Markov order, the best named."""
    verdict = "below" if result["delta"] < 0 else "above"
    lines = [f"# {title}", "", where, "",
             f"Held-out windows: {result['windows']:,} ({result['bases']:,} bases scored); Markov "
             f"chains fitted on {result['train_bases']:,} training bases (add-1 smoothing, first "
             "bases of a window scored with the context they have).", "",
             "| model | bits/base | same chain fitted on both strands |", "|---|---|---|",
             f"| **LM** | **{result['lm_bits_per_base']:.4f}** | |"]
    for order, bits in result["markov"].items():
        both = result["markov_both_strands"][order]
        mark = [" (best)" if order == result["best_order"] and result["best_strands"] == s else ""
                for s in ("forward", "both")]
        lines.append(f"| Markov order {order} | {bits:.4f}{mark[0]} | {both:.4f}{mark[1]} |")
    lines += ["", f"The LM is {abs(result['delta']):.4f} bits/base {verdict} the best Markov chain "
              f"(order {result['best_order']}, fitted on {result['best_strands']} strand"
              f"{'s' if result['best_strands'] == 'both' else ''}).", ""]
    return "\n".join(lines)


def write_report(out_dir: str | Path, result: dict[str, Any], title: str, where: str,
                 curve: Sequence[tuple[int, float]] | None = None) -> dict[str, Path]:
    """Write ``lm_vs_baselines.md``, ``lm_vs_baselines.tsv`` and (given a curve) ``learning_curve.png``."""
    out = Path(out_dir)
    paths = {"md": out / "lm_vs_baselines.md", "tsv": out / "lm_vs_baselines.tsv",
             "png": out / "learning_curve.png"}
    rows = [("lm", result["lm_bits_per_base"])] + [(f"markov_{k}", v) for k, v in result["markov"].items()]
    rows += [(f"markov_{k}_both_strands", v) for k, v in result["markov_both_strands"].items()]
    with atomic_file(paths["tsv"]) as tmp:
        pd.DataFrame(rows, columns=["model", "bits_per_base"]).to_csv(tmp, sep="\t", index=False)
    with atomic_file(paths["md"]) as tmp:
        Path(tmp).write_text(report_markdown(result, title, where))
    if curve is None:
        del paths["png"]
    else:
        _plot_curve(curve, result, paths["png"])
    return paths
