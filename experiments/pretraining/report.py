"""Collect pretraining runs into a markdown table and one learning-curve plot.

    python experiments/pretraining/report.py OUT_STEM RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a genolm-pretrain run folder (metrics.json, lm_vs_baselines.tsv,
checkpoints/last.ckpt). Writes ``OUT_STEM.md`` (one row per run: steps, bases seen, packed
validation bits/base, the same chunks scored alone, the best Markov chain and the difference) and
``OUT_STEM.png`` (every run's validation curve against bases seen, the best chain as a line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402


def run_row(run: Path) -> dict:
    """One run's figures and its learning curve."""
    meta = json.loads((run / "metrics.json").read_text())
    m = meta["metrics"]
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    curve = state.get("genolm", {}).get("curve", [])
    cfg = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    arch, data = cfg["model"]["arch"], cfg["data"]
    tok = cfg["tokenizer"]["_target_"].rsplit(".", 1)[-1]
    recipe = (f"{tok}, rc {str(data.get('rc_aug', False)).lower()}, "
              f"block {data['block_size']} x {data['batch_size']}, lr {cfg['model']['optimizer']['lr']:g}, "
              f"warmup {cfg['model']['scheduler']['warmup_steps']}, h{arch['hidden_size']} "
              f"L{arch['num_hidden_layers']} E{arch['num_local_experts']}")
    return {"run": run.name, "args": recipe, "steps": meta["global_step"],
            "bases_seen": m.get("val/bases_seen", float("nan")), "val": m["val/bits_per_base"],
            "windows": m["val/bits_per_base_windows"], "markov": m["baseline/markov_bits_per_base"],
            "order": int(m["baseline/markov_order"]), "curve": curve}


def main(out_stem: str, runs: list[str]) -> None:
    """Write the table and the plot."""
    rows = [run_row(Path(r)) for r in runs]
    lines = ["| run | recipe | steps | bases seen (M) | val bits/base (packed) | val chunks alone "
             "| best Markov (order) | LM - Markov |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['args']} | {r['steps']} | {r['bases_seen'] / 1e6:.1f} | "
                     f"{r['val']:.4f} | **{r['windows']:.4f}** | {r['markov']:.4f} ({r['order']}) | "
                     f"{r['windows'] - r['markov']:+.4f} |")
    Path(out_stem + ".md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r["curve"]:
            seen, bits = zip(*r["curve"], strict=True)
            ax.plot([s / 1e6 for s in seen], bits, marker="o", ms=3, label=r["run"])
    ax.axhline(min(r["markov"] for r in rows), color="k", ls="--", label="best Markov chain")
    ax.set(xlabel="training bases seen (M)", ylabel="validation bits per base", title=Path(out_stem).name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_stem + ".png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
