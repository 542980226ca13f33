"""One Hydra job log per process of a run: the name each rank variable layout gives."""

from __future__ import annotations

import pytest

from genolm.run_folder import job_log_name

_VARS = ("NODE_RANK", "LOCAL_RANK", "SLURM_PROCID", "RANK")


@pytest.mark.parametrize(("job", "env", "name"), [
    ("pretrain", {}, "pretrain"),
    ("pretrain", {"NODE_RANK": "0", "LOCAL_RANK": "0"}, "pretrain"),
    ("pretrain", {"NODE_RANK": "1", "LOCAL_RANK": "0"}, "pretrain_node1_local0"),
    ("pretrain", {"NODE_RANK": "0", "LOCAL_RANK": "2"}, "pretrain_node0_local2"),
    ("train_ddp_process_1", {"NODE_RANK": "0", "LOCAL_RANK": "1"}, "train_ddp_process_1"),
    ("train_ddp_process_1", {"NODE_RANK": "3", "LOCAL_RANK": "1"}, "train_ddp_process_1_node3"),
    ("pretrain", {"SLURM_PROCID": "0"}, "pretrain"),
    ("pretrain", {"SLURM_PROCID": "5", "NODE_RANK": "1"}, "pretrain_rank5"),
    ("pretrain", {"RANK": "3", "LOCAL_RANK": "1"}, "pretrain_rank3"),
])
def test_job_log_name(monkeypatch: pytest.MonkeyPatch, job: str, env: dict[str, str], name: str) -> None:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert job_log_name(job) == name
