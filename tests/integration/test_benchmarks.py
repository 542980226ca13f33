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
