"""The benchmark workers run end to end on tiny settings and report sane, comparable numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

BENCH = REPO / "experiments" / "benchmarks"


def worker(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.subprocess
@pytest.mark.parametrize("script,extra", [("course_recipe.py", []), ("genolm_path.py", ["32-true"])])
def test_training_workers_time_the_same_chunks(script: str, extra: list[str]) -> None:
    res = worker(script, "tiny", "16", "2", "1", "cpu", *extra)
    assert res["timed_steps"] == 2
    # 16 chunks of 200 bases are 40-45 tokens each with either path's framing
    assert 16 * 38 <= res["tokens_per_step"] <= 16 * 46
    assert res["tokens_per_s"] > 0 and res["peak_rss_mb"] > 0
    assert ("padded" in res["batch"]) == (script == "course_recipe.py")


def test_scale_inputs_are_mutated_copies() -> None:
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("scale_run", REPO / "experiments" / "scale" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _mutate = module._mutate

    seq = (b"ACGTN" * 20_000) + b"acgt" * 100
    out = _mutate(seq, 0.02, np.random.default_rng(0))
    old, new = np.frombuffer(seq.upper(), np.uint8), np.frombuffer(out, np.uint8)
    changed = old != new
    assert not changed[old == ord("N")].any() and set(out) <= set(b"ACGTN")
    assert 0.015 < changed[old != ord("N")].mean() < 0.025  # every drawn position gets another base


@pytest.mark.subprocess
def test_bench_scale_measures_every_stage(tmp_path) -> None:
    script = REPO / "experiments" / "scale" / "run.py"
    proc = subprocess.run([sys.executable, str(script), "--scales", "1", "2",
                           "--work", str(tmp_path / "work"), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import pandas as pd

    rows = pd.read_csv(tmp_path / "results.tsv", sep="\t", dtype={"workers": str})
    assert sorted(zip(rows.scale, rows.stage, rows.workers, strict=True)) == sorted(
        [(s, st, "auto") for s in (1, 2) for st in ("prepare", "tokenizer", "token_cache")]
        + [(2, "prepare", "1"), (2, "token_cache", "1")])
    assert (rows.wall_s > 0).all() and (rows.peak_rss_mb > 50).all()
    chunks = rows[rows.stage == "prepare"].groupby("scale").chunks.first()
    assert chunks[2] == 2 * chunks[1]  # substitutions never touch N, so the same chunks survive
    assert rows[(rows.stage == "token_cache") & (rows.scale == 2)].tokens.nunique() == 1  # 1 or 2 cores
    assert (tmp_path / "scale.png").stat().st_size > 0
    assert "Extrapolation" in (tmp_path / "latest.md").read_text()
