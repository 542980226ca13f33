"""``make bench``: genolm vs the course's Hugging Face recipe, data memory, inference, ISM, profile.

Usage: python experiments/benchmarks/run.py [--mode cpu|gpu] [--models mistral_dna_1m,course_105m]
       [--chunks 1024] [--steps 12,4] [--warmup 1] [--out experiments/benchmarks]
       [--parts training,data,inference,ism,profile]
Each measurement runs in its own process (peak memory per measurement); the driver appends one
dated section to OUT/RESULTS.md and writes the raw numbers to OUT/results/<stamp>-<mode>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import PEAK_BF16_FLOPS, machine
from ism import markdown as ism_table

HERE = Path(__file__).resolve().parent
PARTS = ("training", "data", "inference", "ism", "profile")


def worker(script: str, *args: object) -> dict:
    """Run one worker; return its RESULT line as a dict (raise with its stderr tail on failure)."""
    cmd = [sys.executable, str(HERE / script), *map(str, args)]
    print("bench:", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"bench: {script} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def mfu(row: dict, info: dict) -> str:
    """Model FLOPs utilisation on a known GPU, else empty."""
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in info.get("gpu", "")), None)
    return f"{100 * row['tokens_per_s'] * row['flops_per_token'] / peak:.2f}%" if peak else ""


def training_table(rows: list[dict], info: dict) -> list[str]:
    """Markdown rows: one per (model, path, precision), speed-up against the course row."""
    out = ["| model | path | precision | global batch | non-pad tokens/s | s/step | peak RSS (MB) | "
           "peak GPU (MB) | MFU | vs course |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        course = next(r for r in rows if r["model"] == row["model"] and r["path"] == "course")
        out.append(f"| {row['model']} | {row['path']} | {row['precision']} | {row['batch']} | "
                   f"{row['tokens_per_s']:,.0f} | {row['s_per_step']:.2f} | {row['peak_rss_mb']:,.0f} | "
                   f"{row.get('peak_gpu_mb', '')} | {mfu(row, info)} | "
                   f"{row['tokens_per_s'] / course['tokens_per_s']:.2f}x |")
    return out


def other_tables(data: list[dict], inference: dict | None, ism: dict | None) -> list[str]:
    """Markdown for the data-memory, inference and ISM measurements (those that ran)."""
    note = ("Data side (corpus preparation, token cache, one epoch of packed batches), peak RSS above "
            "the process's RSS before the data work (the epoch's peak includes the memory-mapped token "
            "file's pages it touched; the last column is heap growth, which the kernel cannot reclaim):")
    out = [] if not data else ["", note, "",
           "| corpus | FASTA (MB gz) | train chunks | prepare (s) | epoch (s) | peak while preparing (MB) | "
           "peak incl. epoch (MB) | heap growth (MB) |", "|---|---|---|---|---|---|---|---|"]
    for d in data:
        out.append(f"| default x{d['repeat']} | {d['fasta_mb']} | {d['train_chunks']:,} | {d['prepare_s']} | "
                   f"{d['epoch_s']} | {d['prepare_peak_mb']} | {d['data_peak_mb']} | "
                   f"{d.get('anon_after_epoch_mb', '')} |")
    if inference:
        out += ["", "Inference, batched vs one sequence at a time (same model, same machine):", "",
                "| entrypoint | unit | per-sequence loop | batched | ratio |", "|---|---|---|---|---|"]
        for name, t in inference["tasks"].items():
            out.append(f"| {name} | {t['unit']} | {t['loop']:,.0f} | {t['batched']:,.0f} | "
                       f"{t['ratio']:.1f}x |")
    if ism:
        out += ["", f"In-silico saturation mutagenesis (ism.py): {ism['windows']} x {ism['length']} b hg38 "
                f"windows ({ism['mutants']:,} mutants), tf0 classifier, class-1 logit, {ism['threads']} "
                f"thread, median of {ism['rounds']} rounds:", "", *ism_table(ism)]
    return out


def main() -> None:
    """Run every measurement, then write RESULTS.md and the JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--models", default="mistral_dna_1m,course_105m")
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--steps", default="12,4", help="timed steps per model (one value or one per model)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precisions", default=None, help="genolm precisions (default: cpu 32-true,"
                        "bf16-mixed; gpu bf16-mixed)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--parts", default=",".join(PARTS), help=f"what to measure (default: all of {PARTS})")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        raise SystemExit(f"bench: unknown parts {sorted(parts - set(PARTS))} (choose from {PARTS})")
    device = "cuda" if args.mode == "gpu" else "cpu"
    precisions = (args.precisions or ("bf16-mixed" if device == "cuda" else "32-true,bf16-mixed")).split(",")
    t0, info, rows = time.time(), machine(), []
    # before the run rewrites profile_<mode>.md: "-dirty" then means edits made before the run
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip() or "unknown"
    models = args.models.split(",")
    steps = dict(zip(models, (args.steps.split(",") * len(models))[: len(models)], strict=True))
    for model in models if "training" in parts else []:
        rows.append(worker("course_recipe.py", model, args.chunks, steps[model], args.warmup, device))
        rows += [worker("genolm_path.py", model, args.chunks, steps[model], args.warmup, device, p)
                 for p in precisions]
    work = Path(args.out) / "results" / "work"
    data = [worker("data_memory.py", args.data_dir, r, work) for r in (1, 10)] if "data" in parts else []
    inference = worker("inference.py", args.data_dir, device) if "inference" in parts else None
    ism = worker("ism.py", args.data_dir, "--device", device) if "ism" in parts else None
    if "profile" in parts:
        worker("profile_hot_path.py", models[0], 256, Path(args.out) / f"profile_{args.mode}.md",
               args.data_dir, device)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    timed = f"; timed steps {steps} after {args.warmup} warm-up step(s)" if rows else ""
    body = [*(training_table(rows, info) if rows else []), *other_tables(data, inference, ism)]
    lines = ["", f"## {stamp}: {args.mode}, {info.get('gpu', info['cpu'])} ({info['cores']} cores), "
             f"code {commit}", "",
             f"torch {info['torch']}, transformers {info['transformers']}, lightning {info['lightning']}, "
             f"python {info['python']}; parts {','.join(p for p in PARTS if p in parts)}{timed}; whole run "
             f"{time.time() - t0:.0f} s.", "", *(body[1:] if body and not body[0] else body), "",
             *([f"Hot-path profile: profile_{args.mode}.md", ""] if "profile" in parts else [])]
    results = Path(args.out) / "RESULTS.md"
    if not results.exists():
        results.write_text("# Benchmarks (`make bench`)\n\nWhat is measured: see README.md here.\n")
    with results.open("a") as fh:
        fh.write("\n".join(lines))
    raw = Path(args.out) / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.mode}.json"
    raw.write_text(json.dumps({"machine": info, "training": rows, "data": data, "inference": inference,
                               "ism": ism}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
