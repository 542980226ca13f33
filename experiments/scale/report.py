"""Tables, extrapolations and the plot of ``make bench-scale`` (see run.py).

Extrapolation, per stage, from the two largest scales measured on all cores: wall time is taken
as linear in bases (the line through those two points), evaluated at hg38 (3.1 Gb) and at a 30 Gb
multi-genome corpus. For a 32-core node, the parallel stages' serial share ``f`` comes from the
one-core run at the largest scale (Amdahl: ``t(n) = t(1) (f + (1 - f) / n)``), assuming this
machine's per-core speed; the tokenizer stage is counted as serial there.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from genolm.io import markdown_table  # noqa: E402

TARGETS = {"hg38 (3.1 Gb)": 3.1e9, "30 Gb corpus": 3.0e10}
NODE_CORES = 32


def machine() -> dict[str, str]:
    """CPU, usable cores and code version of this run."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cpu": cpu, "cores": str(psutil.cpu_count()), "commit": commit}


def _linear(frame: pd.DataFrame) -> pd.DataFrame:
    """Per stage: the line through the two largest scales, and how far each smaller scale is from linear.

    ``x of linear from kx`` is (time at the largest scale / time at k x) / (bases ratio): 1 is
    linear, below 1 means fixed costs still weigh at k x, above 1 means worse than linear.
    """
    rows = []
    for stage, part in frame[frame.workers == "auto"].groupby("stage", sort=False):
        part = part.sort_values("bases")
        small, big = part.iloc[-2], part.iloc[-1]
        slope = (big.wall_s - small.wall_s) / (big.bases - small.bases)
        row = {"stage": stage, "slope": slope, "intercept": small.wall_s - slope * small.bases}
        for _, other in part.iloc[:-1].iterrows():
            row[f"x of linear from {other.scale}x"] = round(
                (big.wall_s / other.wall_s) / (big.bases / other.bases), 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("stage")


def _serial_share(frame: pd.DataFrame, stage: str) -> float | None:
    """Amdahl serial share of a stage from its all-core and one-core runs at the largest scale."""
    top = frame[(frame.stage == stage) & (frame.bases == frame.bases.max())]
    one, every = top[top.workers.astype(str) == "1"], top[top.workers == "auto"]
    cores = int(frame.cores.iloc[0])
    if one.empty or every.empty or cores < 2:
        return None
    speedup = one.wall_s.iloc[0] / every.wall_s.iloc[0]
    return min(1.0, max(0.0, (cores / speedup - 1) / (cores - 1)))


def extrapolate(frame: pd.DataFrame) -> pd.DataFrame:
    """Linearity and predicted wall time (minutes) per stage at the target sizes, here and on 32 cores."""
    fit, rows = _linear(frame), []
    cores = int(frame.cores.iloc[0])
    for stage, line in fit.iterrows():
        f = None if stage == "tokenizer" else _serial_share(frame, stage)
        row = {"stage": stage, **{k: v for k, v in line.items() if k.startswith("x of")},
               "serial share": "-" if f is None else round(f, 2)}
        for name, bases in TARGETS.items():
            here = line.intercept + line.slope * bases
            one_core = here if f is None else here / (f + (1 - f) / cores)
            node = one_core if f is None else one_core * (f + (1 - f) / NODE_CORES)
            row[f"{name}, here (min)"] = round(here / 60, 1)
            row[f"{name}, {NODE_CORES} cores (min)"] = round(node / 60, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def plot(frame: pd.DataFrame, path: Path) -> None:
    """Wall time and peak RSS against corpus size, one line per stage, with a linear guide."""
    auto = frame[frame.workers == "auto"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for stage, part in auto.groupby("stage", sort=False):
        part = part.sort_values("bases")
        ax_t.plot(part.bases / 1e6, part.wall_s, "o-", label=stage)
        ax_m.plot(part.bases / 1e6, part.peak_rss_mb, "o-", label=stage)
    lo, hi = auto.bases.min(), auto.bases.max()
    top = auto[auto.bases == hi].wall_s.max()
    ax_t.plot([lo / 1e6, hi / 1e6], [top * lo / hi, top], "k:", label="linear")
    ax_t.axhline(15 * 60, color="red", lw=0.8, ls="--", label="15 min")
    ax_m.axhline(4096, color="red", lw=0.8, ls="--", label="4 GB")
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak memory: PSS of the process tree (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="bases read (Mb)", ylabel=label)
        ax.legend(fontsize=8)
    fig.suptitle(f"genolm data preparation at scale ({frame.cpu.iloc[0]}, {frame.cores.iloc[0]} cores)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _md(table: pd.DataFrame) -> str:
    """Markdown with whole numbers as integers and other floats to 2 decimals."""
    def cell(v):
        if not isinstance(v, float):
            return v
        return "" if v != v else str(int(v)) if v.is_integer() else f"{v:.2f}"
    return markdown_table(table.astype(object).map(cell))


def write_report(frame: pd.DataFrame, out: Path) -> None:
    """``latest.md`` (tables of this run) and ``scale.png``."""
    plot(frame, out / "scale.png")
    cols = ["scale", "bases", "fasta_gz_mb", "stage", "workers", "wall_s", "peak_rss_mb",
            "chunks", "tokens", "shards"]
    table = frame[[c for c in cols if c in frame]]
    totals = frame[frame.workers == "auto"].groupby("scale").agg(
        wall_s=("wall_s", "sum"), peak_rss_mb=("peak_rss_mb", "max"))
    first = frame.iloc[0]
    tokens = frame[(frame.stage == "token_cache") & (frame.workers == "auto")].sort_values("bases").iloc[-1]
    text = [f"## {first.run}: {first.cpu}, {first.cores} cores, code {first.commit}",
            "", _md(table), "",
            f"BPE tokens per base read (with one [SEP] per chunk): {tokens.tokens / tokens.bases:.4f}.", "",
            "All three stages, default workers:", "",
            _md(totals.reset_index()), "", "Extrapolation (see report.py for the model):", "",
            _md(extrapolate(frame)), ""]
    (out / "latest.md").write_text("\n".join(text))
