"""Assemble experiments/gue/RESULTS.md from the sweeps run by `make gue`.

Usage: python experiments/gue/report.py OUT.md LABEL=SWEEP_DIR[,SWEEP_DIR...]:SECONDS [...]
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
from pathlib import Path

import pandas as pd
import torch
import transformers

from genolm.io import markdown_table

ANCHORS = {  # test MCC; Mistral-DNA-1M checkpoints measured here, DNABERT-2 from its paper
    "tf0": (0.507, 0.720), "tf1": (0.588, 0.761), "prom_core_all": (0.541, 0.694),
}


SETUP = """Setup: full finetune with a new classification head (`model.new_head=true`), AdamW lr 5e-4,
batch 128, linear decay, at most `GUE_EPOCHS` epochs (5 here) with early stopping on val/loss
(patience 3), best checkpoint (lowest val/loss) tested on the GUE test split, forward strand only
(`strand=forward`, as the anchors; both strands: experiments/gue/STRAND.md). (a) starts from the
latest `make demo` model: genolm's `mistral_dna_1m` pretrained from scratch for 600 steps on the
default 3.3 Mb hg38 corpus. (b) starts from the same architecture with Mistral-DNA-1M weights: the
backbone of `Mistral-DNA-v1-1M-hg38-finetuned-prom` for tf0-3 and of `...-finetuned-tf0` for
prom_core_all (only these finetuned checkpoints are shipped, so each task uses a backbone finetuned
on a different task). Anchors: the shipped Mistral-DNA-1M checkpoints evaluated here with
`genolm-eval strand=forward`, and DNABERT-2 from its paper."""


def load(label: str, sweeps: list[Path]) -> pd.DataFrame:
    """Test MCC and AUROC per task from the sweeps' summary tables, columns prefixed by ``label``."""
    table = pd.concat([pd.read_csv(sweep / "summary.csv") for sweep in sweeps])
    table["task"] = table["overrides"].map(lambda s: re.search(r"(?:^| )(?:task|data)=(\S+)", s).group(1))
    return table.set_index("task")[["test/mcc", "test/auroc"]].add_prefix(f"{label} ")


def main(out: str, specs: list[str]) -> None:
    """Write the results table with anchors, machine and wall times to ``out``."""
    frames, timing = [], []
    for spec in specs:
        label, rest = spec.split("=", 1)
        sweep, seconds = rest.rsplit(":", 1)
        frames.append(load(label, [Path(s) for s in sweep.split(",")]))
        timing.append(f"- {label}: {int(seconds) / 60:.1f} min wall time ({sweep})")
    table = pd.concat(frames, axis=1)
    table["Mistral-DNA-1M ckpt MCC"] = [ANCHORS.get(t, (None, None))[0] for t in table.index]
    table["DNABERT-2 MCC"] = [ANCHORS.get(t, (None, None))[1] for t in table.index]
    table = table.map(lambda v: "-" if v is None or v != v else v)  # no anchor published
    cpu = platform.processor() or platform.machine()
    lines = [
        "# GUE finetuning benchmark (test split)", "",
        f"Generated {dt.date.today()} by `make gue` on {cpu}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, transformers {transformers.__version__}.", "",
        markdown_table(table.reset_index()), "", SETUP, "", "Wall time:", *timing, ""]
    Path(out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
