"""Seeded uniform line samples (the BPE training sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genolm.data.sampling import sample_lines
from genolm.errors import GenolmError


def _numbered(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "train.txt"
    path.write_text("".join(f"{i}\n" for i in range(n)))
    return path


def _positions(path: Path, k: int | None, seed: int = 0) -> list[int]:
    return [int(line) for line in sample_lines(path, k, seed)]


def test_sample_is_uniform_over_the_whole_file(tmp_path: Path) -> None:
    path = _numbered(tmp_path, 10_000)
    pos = _positions(path, 1_000)
    assert len(pos) == len(set(pos)) == 1_000 and pos == sorted(pos)  # exact size, file order
    # a first-N sample would have mean 499.5 and nothing past line 999
    assert abs(sum(pos) / len(pos) - 4_999.5) < 300  # sd of the mean is about 87
    quarters = [sum(q * 2_500 <= p < (q + 1) * 2_500 for p in pos) for q in range(4)]
    assert all(180 < count < 320 for count in quarters), quarters  # 250 each, sd about 14


def test_every_line_is_equally_likely(tmp_path: Path) -> None:
    path = _numbered(tmp_path, 20)
    hits = [0] * 20
    for seed in range(400):
        for p in _positions(path, 5, seed):
            hits[p] += 1
    assert all(60 < h < 140 for h in hits), hits  # 100 each, sd about 8.7


def test_sample_is_seeded(tmp_path: Path) -> None:
    path = _numbered(tmp_path, 5_000)
    assert _positions(path, 100, seed=1) == _positions(path, 100, seed=1)
    assert _positions(path, 100, seed=1) != _positions(path, 100, seed=2)


@pytest.mark.parametrize("k", [None, 50, 80])
def test_small_file_is_used_whole(tmp_path: Path, k: int | None) -> None:
    path = _numbered(tmp_path, 50)
    assert _positions(path, k) == list(range(50))


def test_bad_size(tmp_path: Path) -> None:
    with pytest.raises(GenolmError, match="sample size"):
        sample_lines(_numbered(tmp_path, 5), 0)
