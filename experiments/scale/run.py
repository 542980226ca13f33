"""``make bench-scale``: data preparation at 1x to 100x the demo corpus, and extrapolations.

For each scale it writes one gzipped FASTA (not timed): the demo corpus's two hg38 pieces, then
``scale - 1`` copies with random substitutions at ``--mutation-rate`` of the positions (seeded per
copy), so the larger corpora are not exact repeats. Then each stage runs in a fresh child process
on a fresh cache, timed by wall clock, with its peak memory: the proportional set size (PSS,
pages shared between forked processes counted once) summed over the child and its worker
processes, sampled every 100 ms:

- ``prepare``: :func:`genolm.data.corpus.prepare_corpus` (200-base chunks, default workers);
- ``tokenizer``: :func:`genolm.data.tokenizers.bpe` (vocab 4096, a 200,000-chunk sample);
- ``token_cache``: :func:`genolm.data.token_cache.build_token_cache` with that tokenizer.

At the largest scale ``prepare`` and ``token_cache`` run again on one core (``workers=1``,
``RAYON_NUM_THREADS=1``) for the parallel speedup. Rows go to ``results.tsv``; ``report.py`` turns
them into the plot and the RESULTS.md section.
Usage: python experiments/scale/run.py [--scales 1 10 30 100] [--data data] [--work .cache/scale]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
INPUTS = ("hg38/chr2_1-2333275.fa.gz", "human_other/hisat2_22_20-21M.fa.gz")
STAGES = ("prepare", "tokenizer", "token_cache")
_SHIFT = np.zeros(256, dtype=np.uint8)


def _mutate(seq: bytes, rate: float, rng: np.random.Generator) -> bytes:
    """Substitute a different base at a share ``rate`` of the A/C/G/T positions (any case)."""
    arr = np.frombuffer(seq.upper(), dtype=np.uint8).copy()
    codes = np.full(256, 255, dtype=np.uint8)
    codes[list(b"ACGT")] = range(4)
    pos = np.flatnonzero((rng.random(len(arr)) < rate) & (codes[arr] < 4))
    arr[pos] = np.frombuffer(b"ACGT", dtype=np.uint8)[(codes[arr[pos]] + rng.integers(1, 4, len(pos))) % 4]
    return arr.tobytes()


def write_corpus(data: Path, scale: int, out: Path, rate: float) -> Path:
    """The demo inputs once unchanged, then ``scale - 1`` mutated copies, as one FASTA.gz."""
    from genolm.data.sequences import iter_records

    records = [(name, seq.encode()) for path in INPUTS for name, seq in iter_records(data / path)]
    with gzip.open(out, "wb", compresslevel=1) as fh:
        for copy in range(scale):
            rng = np.random.default_rng(copy)
            for name, seq in records:
                body = seq if copy == 0 else _mutate(seq, rate, rng)
                fh.write(f">{name}_copy{copy}\n".encode())
                fh.write(b"\n".join(body[i:i + 60] for i in range(0, len(body), 60)) + b"\n")
    return out


def child(stage: str, fasta: Path, cache: Path, workers: int | None) -> dict:
    """Run one stage in this process; return what it produced."""
    from genolm.data import tokenizers as T
    from genolm.data.corpus import load_corpus_meta, prepare_corpus
    from genolm.data.token_cache import TokenSplit, build_token_cache

    if stage == "prepare":
        corpus = prepare_corpus([fasta], cache / "corpus", name="scale", workers=workers)
        return {"chunks": sum(load_corpus_meta(corpus)["counts"][s] for s in ("train", "val"))}
    (corpus,) = (cache / "corpus").glob("scale-*")
    tok = T.bpe(corpus, cache, vocab_size=4096)
    if stage == "tokenizer":
        return {"vocab": len(tok)}
    tokens = build_token_cache(corpus, tok, cache)
    return {"tokens": sum(TokenSplit(tokens, s).n_tokens for s in ("train", "val")),
            "shards": len(TokenSplit(tokens, "train").shards)}


def measure(stage: str, fasta: Path, cache: Path, workers: int | None) -> dict:
    """Run a stage in a child process; wall time, peak RSS of its process tree, its output."""
    cmd = [sys.executable, __file__, "--child", stage, "--fasta", str(fasta), "--cache", str(cache)]
    env = dict(os.environ)
    if workers is not None:
        cmd += ["--workers", str(workers)]
        env["RAYON_NUM_THREADS"] = str(workers)
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in procs))
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed (exit {proc.returncode}): {out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"stage": stage, "wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20, 1),
            "workers": workers or "auto", **result}


def run_scale(data: Path, work: Path, scale: int, rate: float, single_core: bool) -> list[dict]:
    """Write the corpus of one scale and measure every stage on a fresh cache."""
    fasta = work / f"demo_x{scale}.fa.gz"
    if not fasta.is_file():
        write_corpus(data, scale, work / "partial.fa.gz", rate).rename(fasta)
    mb = fasta.stat().st_size / 2**20
    cache = work / f"cache_x{scale}"
    rows = []
    for stage in STAGES:
        if stage == "prepare":
            shutil.rmtree(cache, ignore_errors=True)
        rows.append(measure(stage, fasta, cache, None))
    if single_core:
        for stage in ("prepare", "token_cache"):
            shutil.rmtree(cache / ("corpus" if stage == "prepare" else "tokens"), ignore_errors=True)
            rows.append(measure(stage, fasta, cache, 1))
    bases = json.loads(next((cache / "corpus").glob("scale-*/meta.json")).read_text())["counts"]["bases_read"]
    return [{"scale": scale, "bases": bases, "fasta_gz_mb": round(mb, 1), **row} for row in rows]


def main() -> None:
    """Measure every scale; append the rows to results.tsv and write the report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30, 100])
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--work", type=Path, default=Path(".cache/scale"))
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--mutation-rate", type=float, default=0.02)
    p.add_argument("--child", choices=STAGES)
    p.add_argument("--fasta", type=Path)
    p.add_argument("--cache", type=Path)
    p.add_argument("--workers", type=int)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fasta, args.cache, args.workers)))
        return
    import pandas as pd
    from report import machine, write_report

    args.work.mkdir(parents=True, exist_ok=True)
    stamp, rows = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), []
    for scale in args.scales:
        rows += run_scale(args.data, args.work, scale, args.mutation_rate, scale == max(args.scales))
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows).assign(run=stamp, **machine())
    results = args.out / "results.tsv"
    old = pd.read_csv(results, sep="\t") if results.is_file() else None
    pd.concat([old, frame]).to_csv(results, sep="\t", index=False)
    write_report(frame, args.out)


if __name__ == "__main__":
    main()
