"""Several genomes in one corpus, each with a sampling weight (data.inputs entries {path, weight})."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from helpers import write_fasta

from genolm.data.corpus import prepare_corpus
from genolm.errors import GenolmError


def _genomes(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(0)
    seq = lambda n: "".join(rng.choice("ACGT") for _ in range(n))  # noqa: E731
    human = write_fasta(tmp_path / "human.fa", {"chr1": seq(20_000), "chr2": seq(20_000)})
    yeast = write_fasta(tmp_path / "yeast.fa", {"chrI": seq(40_000)})
    return human, yeast


def _meta(corpus: Path) -> dict:
    return json.loads((corpus / "meta.json").read_text())


def _chunks(corpus: Path) -> set[str]:
    return {line for split in ("train", "val") for line in (corpus / f"{split}.txt").read_text().split()}


def test_weight_samples_chunks_of_one_input(tmp_path: Path) -> None:
    human, yeast = _genomes(tmp_path)
    full = prepare_corpus([human, yeast], tmp_path / "out", chunk_len=100)
    mixed = prepare_corpus([human, {"path": str(yeast), "weight": 0.25}], tmp_path / "out", chunk_len=100)
    assert mixed != full
    per_input = _meta(mixed)["per_input"]
    assert [(p["weight"], p["chunks"]) for p in per_input] == [(1.0, 400), (0.25, 400)]
    assert per_input[0]["kept"] == 400 and 70 < per_input[1]["kept"] < 130  # 100 expected, sd 8.7
    counts = _meta(mixed)["counts"]
    assert counts["train"] + counts["val"] == 400 + per_input[1]["kept"]
    assert counts["dropped_weight"] == 400 - per_input[1]["kept"]
    assert _chunks(mixed) < _chunks(full)  # a subset: the kept chunks themselves are unchanged
    assert _meta(full)["per_input"][1] == {"path": str(yeast), "weight": 1.0, "chunks": 400, "kept": 400}


def test_weighted_sample_is_deterministic_and_in_the_fingerprint(tmp_path: Path) -> None:
    human, yeast = _genomes(tmp_path)
    inputs = [{"path": human}, {"path": yeast, "weight": 0.5}]
    first = prepare_corpus(inputs, tmp_path / "a", chunk_len=100)
    again = prepare_corpus(inputs, tmp_path / "b", chunk_len=100)  # rebuilt elsewhere: same chunks
    assert first.name == again.name and _chunks(first) == _chunks(again)
    assert (first / "train.txt").read_text() == (again / "train.txt").read_text()
    other = prepare_corpus([human, {"path": yeast, "weight": 0.4}], tmp_path / "a", chunk_len=100)
    assert other.name != first.name and _chunks(other) != _chunks(first)
    assert _meta(other)["sources"][1]["weight"] == 0.4
    # weight 1 written out is the plain path: the same corpus (and old fingerprints stay valid)
    plain = prepare_corpus([human, yeast], tmp_path / "a", chunk_len=100)
    assert prepare_corpus([{"path": human, "weight": 1}, yeast], tmp_path / "a", chunk_len=100) == plain
    assert "weight" not in _meta(plain)["sources"][0]


@pytest.mark.parametrize(("entry", "match"), [
    ({"weight": 0.5}, "a path or"), ({"path": "x", "wieght": 0.5}, "a path or"),
    ({"path": "{yeast}", "weight": 1.5}, r"weight must be in \(0, 1\].*never repeated"),
    ({"path": "{yeast}", "weight": 0}, r"weight must be in \(0, 1\]"),
    ({"path": "{yeast}", "weight": "half"}, r"weight must be in \(0, 1\]"),
])
def test_bad_weighted_inputs(tmp_path: Path, entry: dict, match: str) -> None:
    _, yeast = _genomes(tmp_path)
    if "path" in entry:
        entry = {**entry, "path": entry["path"].format(yeast=yeast)}
    with pytest.raises(GenolmError, match=match):
        prepare_corpus([entry], tmp_path / "out")


def test_cli_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genolm.pipelines.prepare_corpus import main

    human, yeast = _genomes(tmp_path)
    assert main([str(human), str(yeast), "-o", str(tmp_path / "out"), "--weights", "1", "0.25"]) == 0
    corpus = Path(capsys.readouterr().out.splitlines()[0])
    assert corpus == prepare_corpus([human, {"path": yeast, "weight": 0.25}], tmp_path / "out")
    assert main([str(human), str(yeast), "-o", str(tmp_path / "out"), "--weights", "0.5"]) == 1
    assert "2 inputs" in capsys.readouterr().err
