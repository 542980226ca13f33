"""Data prepared once per multi-process run: rank 0 builds, ranks started beside it wait and load."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_fasta

from genolm.data import tokenizers as T
from genolm.data.genome import GenomeChunksDataModule
from genolm.errors import GenolmError

# an extra rank (NODE_RANK=1) started beside rank 0: records every build it starts itself
EXTRA_RANK = """
import functools, json, sys
from pathlib import Path
from genolm.data import corpus, token_cache, tokenizers
from genolm.data.genome import GenomeChunksDataModule

built = []
for module in (corpus, tokenizers, token_cache):
    real = module.atomic_dir
    def spy(final, real=real):
        built.append(str(final))
        return real(final)
    module.atomic_dir = spy
dm = GenomeChunksDataModule([sys.argv[1]], functools.partial(tokenizers.bpe, vocab_size=40), sys.argv[2],
                            chunk_len=50)
Path(sys.argv[3]).touch()
dm.prepare()
print(json.dumps({"corpus": str(dm.corpus_dir), "tokens": str(dm.token_dir), "built": built}))
"""


def _genome(tmp_path: Path, bad: bool = False) -> Path:
    seq = "ACGTTGCAAGGCTTAC" * 400
    return write_fasta(tmp_path / "g.fa", {"chr1": seq[:3000] + ("Z" if bad else "A") + seq[3001:]})


def _module(fasta: Path, cache: Path) -> GenomeChunksDataModule:
    return GenomeChunksDataModule([str(fasta)], functools.partial(T.bpe, vocab_size=40), str(cache),
                                  chunk_len=50)


@pytest.mark.subprocess
def test_extra_rank_waits_for_rank_zero_and_loads_its_data(tmp_path: Path, monkeypatch) -> None:
    fasta, cache, started = _genome(tmp_path), tmp_path / "cache", tmp_path / "started"
    for var in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    env = {**os.environ, "NODE_RANK": "1", "LOCAL_RANK": "0"}
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen([sys.executable, "-c", EXTRA_RANK, str(fasta), str(cache), str(started)],
                                 stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        deadline = time.time() + 600
        while not started.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        assert child.poll() is None, (tmp_path / "child.log").read_text()[-2000:]  # waiting, not done
        assert not (cache / "corpus").exists()
        dm = _module(fasta, cache)
        dm.prepare()  # this process is global rank 0
        out, _ = child.communicate(timeout=600)
    assert child.returncode == 0, (tmp_path / "child.log").read_text()[-2000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got == {"corpus": str(dm.corpus_dir), "tokens": str(dm.token_dir), "built": []}
    assert len(list((cache / "ready").glob("*.json"))) == 1


def test_marker_lets_later_ranks_through_and_a_failure_reaches_them(tmp_path: Path, monkeypatch) -> None:
    for var in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    good, cache = _genome(tmp_path), tmp_path / "cache"
    first = _module(good, cache)
    first.prepare()
    monkeypatch.setenv("NODE_RANK", "1")
    again = _module(good, cache)
    again.prepare()  # the marker exists: no wait
    assert (again.corpus_dir, again.token_dir) == (first.corpus_dir, first.token_dir)
    monkeypatch.delenv("NODE_RANK")
    (tmp_path / "bad").mkdir()
    bad = _genome(tmp_path / "bad", bad=True)
    with pytest.raises(GenolmError, match="invalid letter 'Z'"):
        _module(bad, cache).prepare()
    assert len(list((cache / "ready").glob("*.failed"))) == 1
    monkeypatch.setenv("NODE_RANK", "1")
    with pytest.raises(GenolmError, match="rank 0 failed to prepare the data: GenolmError: .*invalid letter"):
        _module(bad, cache).prepare()
    with pytest.raises(GenolmError, match="missing.fa: file not found"):  # checked here, no wait
        _module(tmp_path / "missing.fa", cache).prepare()
