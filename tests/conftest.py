"""Fixtures and settings for every test; helpers live in ``helpers.py``, imported explicitly.

``tests/unit`` needs neither the data mirror nor subprocesses; ``tests/integration`` (its own conftest)
needs the real data from ``make data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One genolm cache for the session, so corpora and tokenizers are built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def one_thread():
    """One intra-op thread, like each DDP rank: in-process runs stay fast on a shared 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
