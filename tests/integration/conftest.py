"""Integration tests read the real data mirror: without it each one errors (never skips), naming `make data`.

A missing mirror must turn ``make test`` red, so the check is an autouse fixture that fails setup;
``tests/unit`` never loads this file and runs without the data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REQUIRED_DATA, compose_cfg, tiny_overrides


@pytest.fixture(scope="session", autouse=True)
def real_data() -> None:
    """Error (not skip) every integration test when the data mirror is missing."""
    missing = [str(path) for path in REQUIRED_DATA if not path.exists()]
    if missing:
        pytest.fail(f"data mirror missing ({', '.join(missing)}): run `make data` (DATA_MIRROR=...) first; "
                    "`make test-unit` runs the tests that need no data", pytrace=False)


@pytest.fixture
def tiny_cfg(tmp_path: Path, cache_dir: Path):
    """Factory: composed pretrain config for a tiny real-data run (chr22), plus extra overrides."""
    def make(*extra: str):
        return compose_cfg("pretrain", tiny_overrides(tmp_path / "run", cache_dir) + list(extra))

    return make
