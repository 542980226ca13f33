"""Litter of killed builds: owner-named temporaries, stale ones removed, plain permissions, SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import CHR22

from genolm.data import tokenizers as T
from genolm.data.corpus import prepare_corpus
from genolm.data.token_cache import build_token_cache
from genolm.io import atomic_dir, atomic_file, write_json_atomic

HOST = socket.gethostname()

# Builds the char-tokenizer cache of corpus argv[1] under argv[2] in batches of 16 chunks; the
# val split (tokenized second) stalls after two batches: it touches argv[3] and waits to be killed.
STALLING_BUILD = """
import signal, sys
from pathlib import Path
from genolm.data import token_cache, tokenizers

real, splits = token_cache.uncached_backend, []

class Stalling:
    def __init__(self, backend):
        self.backend, self.calls = backend, 0
        splits.append(self)

    def encode_batch_fast(self, *args, **kwargs):
        self.calls += 1
        if len(splits) == 2 and self.calls > 2:
            Path(sys.argv[3]).touch()
            while True:
                signal.pause()
        return self.backend.encode_batch_fast(*args, **kwargs)

token_cache.uncached_backend = lambda tok: Stalling(real(tok))
token_cache.build_token_cache(sys.argv[1], tokenizers.char(), sys.argv[2], batch=16)
"""


def stale_name(final: Path, pid: int, host: str = HOST) -> Path:
    """A temporary of ``final`` named as genolm names them, owned by ``pid`` on ``host``."""
    return final.with_name(f".{final.name}.tmp-{host}-{pid}-0bad")


def temps_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


def wait_for(condition: Callable[[], bool], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """Id of a process of this host that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_corpus([CHR22], tmp_path_factory.mktemp("corpus"), chunk_len=200)


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_atomic_dir_gets_mkdir_permissions(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "meta.json").write_text("{}")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(before)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("out", "plain")}
    assert modes == {0o777 & ~umask}


def test_temporaries_name_their_host_and_process(tmp_path: Path) -> None:
    owner = f".tmp-{HOST}-{os.getpid()}-"
    with atomic_dir(tmp_path / "out") as tmp, atomic_file(tmp_path / "out.json") as tmp_file:
        assert tmp.name.startswith(f".out{owner}") and tmp_file.name.startswith(f".out.json{owner}")
        tmp_file.write_text("{}")


@pytest.mark.subprocess
def test_atomic_dir_removes_only_temps_of_dead_local_processes(tmp_path: Path, dead_pid: int) -> None:
    final = tmp_path / "cache"
    dead = stale_name(final, dead_pid)
    kept = [stale_name(final, os.getpid()),  # a live build
            stale_name(final, dead_pid, host="other-node"),  # shared file system: unknown process
            stale_name(tmp_path / "cache2", dead_pid)]  # another folder's: its own build removes it
    for folder in (dead, *kept):
        folder.mkdir()
        (folder / "train.bin").write_bytes(b"\0" * 64)
    with atomic_dir(final) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert set(tmp_path.iterdir()) == {final, *kept}
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "failed"):
        raise RuntimeError("build failed")
    assert set(tmp_path.iterdir()) == {final, *kept}


@pytest.mark.subprocess
def test_atomic_file_removes_failed_and_stale_temps(tmp_path: Path, dead_pid: int) -> None:
    path = tmp_path / "metrics.json"
    stale, live = stale_name(path, dead_pid), stale_name(path, os.getpid())
    stale.write_text("half written by a killed process")
    live.write_text("being written")
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("write failed")
    assert set(tmp_path.iterdir()) == {live}
    write_json_atomic(path, {"a": 1})
    assert set(tmp_path.iterdir()) == {live, path}


@pytest.mark.subprocess
def test_reused_corpus_and_cache_remove_stale_temps(corpus: Path, tmp_path: Path, dead_pid: int) -> None:
    cache = build_token_cache(corpus, T.char(), tmp_path)
    litter = [stale_name(cache, dead_pid), stale_name(corpus, dead_pid)]
    for folder in litter:
        folder.mkdir()
    assert build_token_cache(corpus, T.char(), tmp_path) == cache
    assert prepare_corpus([CHR22], corpus.parent, chunk_len=200) == corpus
    assert not any(folder.exists() for folder in litter)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.subprocess
def test_cache_build_killed_midway_is_rebuilt_whole_without_litter(corpus: Path, tmp_path: Path) -> None:
    root, stalled = tmp_path / "killed", tmp_path / "stalled"
    with open(tmp_path / "child.log", "w") as child_log:
        proc = subprocess.Popen([sys.executable, "-c", STALLING_BUILD, str(corpus), str(root), str(stalled)],
                                stdout=child_log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: stalled.exists() or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "child.log").read_text()[-3000:]
        (half,) = temps_under(root)
        assert {"train-00000.bin", "val-00000.bin"} <= {p.name for p in half.iterdir()}
        assert not (half / "meta.json").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    cache = build_token_cache(corpus, T.char(), root)
    clean = build_token_cache(corpus, T.char(), tmp_path / "clean")
    assert cache.name == clean.name and _files(cache) == _files(clean)
    assert temps_under(root) == [] and [p.name for p in (root / "tokens").iterdir()] == [cache.name]
