"""2 nodes x 1 CPU process, started as a cluster launcher starts them, vs one process; then a resume.

Each "node" is one ``genolm-pretrain`` process with the same command line and the variables a
launcher sets on each node (``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``LOCAL_RANK``).
Lightning's ``LightningEnvironment`` reads them: ``LOCAL_RANK`` in the environment means the
processes were started externally, global rank = ``NODE_RANK`` x devices + ``LOCAL_RANK`` and the
world size is ``num_nodes`` x devices (``WORLD_SIZE`` is not read). Both use one run folder, as on
a shared file system; only global rank 0 writes checkpoints, ``hf/`` and ``metrics.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import compose_cfg
from test_distributed import _pretrain_overrides

from genolm.pipelines.pretrain import train

pytestmark = [pytest.mark.subprocess, pytest.mark.usefixtures("one_thread")]

NODES = 2
TIMEOUT_S = 240


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it for a socket bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_nodes(overrides: list[str], run_dir: Path, logs: Path) -> list[int]:
    """Start one ``genolm-pretrain`` per node with the same arguments and wait for all of them.

    Args:
        overrides: Hydra overrides shared by every node.
        run_dir: the one run folder of all nodes (``hydra.run.dir``).
        logs: folder for each node's stdout/stderr (``node<k>.out`` / ``node<k>.err``).

    Returns:
        The exit status of each node, node 0 first.

    """
    exe = Path(sys.executable).parent / "genolm-pretrain"
    args = [str(exe), *overrides, "trainer=ddp_cpu", "trainer.devices=1", f"trainer.num_nodes={NODES}",
            f"hydra.run.dir={run_dir}"]
    port = str(free_port())
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        for node in range(NODES):
            env = {**os.environ, "HYDRA_FULL_ERROR": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                   "NODE_RANK": str(node), "LOCAL_RANK": "0"}
            with open(logs / f"node{node}.out", "w") as out, open(logs / f"node{node}.err", "w") as err:
                procs.append(subprocess.Popen(args, stdout=out, stderr=err, env=env))
        deadline = time.monotonic() + TIMEOUT_S
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        return [proc.returncode for proc in procs]
    finally:
        for proc in procs:  # on a timeout or an error: no process outlives the test
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _tail(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("node*.err")))


def test_two_nodes_match_one_process_and_resume(tmp_path: Path, cache_dir: Path) -> None:
    """Same steps and ``val/loss`` as one process at the same global batch, fresh and resumed."""
    overrides = _pretrain_overrides(tmp_path, cache_dir)  # 6 steps, global batch 32, 16 per process
    single_overrides = [o for o in overrides if not o.startswith("paths.root")] + ["export_hf=false"]
    # the 1-process run first: it also builds the corpus and token cache the nodes then share
    single, objects = train(compose_cfg("pretrain", single_overrides + [
        f"paths.output_dir={tmp_path / 'single'}"]))
    assert objects["trainer"].accumulate_grad_batches == 2

    runs = tmp_path / "logs" / "pretrain" / "runs"
    codes = run_nodes(overrides, runs / "nodes", tmp_path / "out" / "fresh")
    assert codes == [0, 0], _tail(tmp_path / "out" / "fresh")
    assert [p.name for p in runs.iterdir()] == ["nodes"]  # node 1 made no folder of its own
    assert sorted(p.name for p in (runs / "nodes" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert (runs / "nodes" / "hf" / "model.safetensors").is_file()
    line = "global batch 32 = 16 per device x 1 device(s) x 2 node(s) x 1 accumulation"
    for log in ("pretrain.log", "pretrain_node1_local0.log"):  # one job log per node
        assert (runs / "nodes" / log).read_text().count(line) == 1, log
    nodes = json.loads((runs / "nodes" / "metrics.json").read_text())
    assert nodes["global_step"] == objects["trainer"].global_step == 6
    assert nodes["metrics"]["val/loss"] == pytest.approx(single["val/loss"], abs=2e-3)

    last = runs / "nodes" / "checkpoints" / "last.ckpt"
    resume = [f"ckpt_path={last}", "trainer.max_steps=10"]
    codes = run_nodes(overrides + resume, runs / "resumed", tmp_path / "out" / "resumed")
    assert codes == [0, 0], _tail(tmp_path / "out" / "resumed")
    assert sorted(p.name for p in runs.iterdir()) == ["nodes", "resumed"]
    resumed = json.loads((runs / "resumed" / "metrics.json").read_text())
    assert resumed["resumed_from"] == str(last)
    single_resumed, objects = train(compose_cfg("pretrain", single_overrides + resume + [
        f"paths.output_dir={tmp_path / 'single_resumed'}"]))
    assert resumed["global_step"] == objects["trainer"].global_step == 10
    assert resumed["metrics"]["val/loss"] == pytest.approx(single_resumed["val/loss"], abs=2e-3)
    assert resumed["metrics"]["val/loss"] != nodes["metrics"]["val/loss"]  # it trained on
