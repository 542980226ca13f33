"""Generation: determinism, exact lengths, greedy = argmax stepping, baselines, JSD, novelty, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DATA, run_cli, tiny_lm, write_fasta

from genolm.checkpoints import load_causal_lm
from genolm.data.tokenizers import char, pretrained
from genolm.errors import GenolmError
from genolm.export import export_hf
from genolm.generation.realism import MarkovChain, NoveltyIndex, jsd, kmer_spectrum, reverse_complement
from genolm.generation.sampling import generate_dna
from genolm.inference.parallel import torch_threads
from genolm.models.fast.switch import fast_mode


@pytest.fixture(scope="module", params=["char", "bpe"])
def lm(request):
    if request.param == "char":
        return tiny_lm(char())
    tok = pretrained(DATA / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0")
    return tiny_lm(tok)


def test_same_seed_same_sequences_exact_length(lm) -> None:
    a = generate_dna(*lm, n=6, length=57, seed=3, batch_size=4, progress=False, top_k=50)
    b = generate_dna(*lm, n=6, length=57, seed=3, batch_size=4, progress=False, top_k=50)
    c = generate_dna(*lm, n=6, length=57, seed=4, batch_size=4, progress=False, top_k=50)
    assert a["sequence"].tolist() == b["sequence"].tolist() != c["sequence"].tolist()
    assert all(len(s) == 57 and set(s) <= set("ACGT") for s in a["sequence"])
    assert (a["length"] == 57).all() and a["gc"].between(0, 1).all() and (a["log_likelihood"] < 0).all()
    prompted = generate_dna(*lm, n=2, length=30, prompt="acgtacgt", seed=1, progress=False)
    assert all(s.startswith("ACGTACGT") and len(s) == 30 for s in prompted["sequence"])


def test_sampling_threads_are_scoped_and_the_kernels_do_not_change_samples(lm) -> None:
    """CPU sampling runs on its own intra-op thread count, torch's comes back afterwards; genolm's
    kernels and transformers' own sample the same sequences."""
    model, tok = lm
    before = torch.get_num_threads()
    seen = []
    with torch_threads(before + 1):
        seen.append(torch.get_num_threads())
    assert seen == [before + 1] and torch.get_num_threads() == before
    runs = []
    for fast in ("true", "false"):
        with fast_mode(model, fast):
            runs.append(generate_dna(model, tok, n=4, length=40, seed=5, progress=False, threads=1))
        assert torch.get_num_threads() == before
    assert runs[0]["sequence"].tolist() == runs[1]["sequence"].tolist()
    assert np.allclose(runs[0]["log_likelihood"], runs[1]["log_likelihood"], atol=1e-4)


def test_greedy_equals_argmax_stepping() -> None:
    model, tok = tiny_lm(char())
    out = generate_dna(model, tok, n=1, length=20, prompt="GATT", greedy=True, progress=False)
    ids = [tok.bos_token_id] + tok("GATT", add_special_tokens=False)["input_ids"]
    special = list(tok.all_special_ids)
    with torch.no_grad():
        for _ in range(16):
            logits = model(torch.tensor([ids])).logits[0, -1]
            logits[special + [tok.convert_tokens_to_ids("N")]] = float("-inf")
            ids.append(int(logits.argmax()))
    expected = "".join(tok.convert_ids_to_tokens(ids[1:]))
    assert out["sequence"][0] == expected


@pytest.mark.parametrize("kwargs,match", [
    ({"temperature": 0.0}, "temperature must be > 0"), ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_k": -1}, "top_k must be >= 0"), ({"length": 0}, "length must be > 0"),
    ({"length": 10_000}, "cannot fit in the model's 256 positions"),
    ({"prompt": "ACGU"}, "invalid letter 'U'"),
])
def test_bad_sampling_settings(kwargs: dict, match: str) -> None:
    args = {"n": 1, "length": 20, "progress": False, **kwargs}
    with pytest.raises(GenolmError, match=match):
        generate_dna(*tiny_lm(char()), **args)


def test_markov_chain_recovers_transitions() -> None:
    rng = np.random.default_rng(0)
    table = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1],
                      [0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.1, 0.7]])
    seq, state = [], 0
    for _ in range(100_000):
        state = rng.choice(4, p=table[state])
        seq.append("ACGT"[state])
    chain = MarkovChain(order=1).fit(["".join(seq)])
    assert np.allclose(chain.transitions, table, atol=0.01)
    sampled = chain.sample(50, 400, seed=0)
    assert np.allclose(MarkovChain(1).fit(sampled).transitions, table, atol=0.03)


def test_jsd_zero_for_identical_and_matches_hand_value() -> None:
    seqs = ["ACGTTGCA", "GGGCCCAT"]
    assert jsd(kmer_spectrum(seqs, 2), kmer_spectrum(seqs, 2)) == 0.0
    p, q = np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.5, 0.0, 0.5, 0.0])
    # m = (0.5, 0.25, 0.25, 0); KL(p||m) = 0.5*log2(0.5/0.25) = 0.5 bits, same for q
    assert jsd(p, q) == pytest.approx(0.5)
    assert kmer_spectrum(["AAAA"], 1)[0] == 1.0


def test_novelty_index_finds_planted_matches() -> None:
    rng = np.random.default_rng(1)
    corpus = ["".join(rng.choice(list("ACGT"), 20_000)) for _ in range(2)]
    index = NoveltyIndex(corpus)
    noise = "".join(rng.choice(list("ACGT"), 200))
    assert index.longest_match(noise) < 20
    planted = noise[:50] + corpus[1][5000:5045] + noise[95:]
    assert index.longest_match(planted) >= 45
    short = noise[:80] + corpus[0][100:125] + noise[105:]
    assert index.longest_match(short) >= 25
    assert index.longest_match(reverse_complement(corpus[0][300:500])) == 200  # other strand


@pytest.mark.subprocess
def test_cli_generate_with_report(tmp_path: Path) -> None:
    model, tok = tiny_lm(char())
    hf = export_hf(model, tok, tmp_path / "hf")
    res = run_cli("genolm-generate", f"model_path={hf}", "n=12", "length=60", "report.enabled=true",
                  f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "generate" / "runs").iterdir()
    fasta = (run / "generated.fa").read_text()
    assert fasta.count(">") == 12
    report = pd.read_csv(run / "report.tsv", sep="\t")
    assert report["set"].tolist() == ["generated", "iid", "markov3"]
    assert {"jsd_k1", "jsd_k6", "gc_ks", "share_match_ge30"} <= set(report.columns)
    assert (run / "pca_4mer.png").is_file() and (run / "jsd_by_k.png").is_file()
    empty = write_fasta(tmp_path / "empty.fa", {})
    bad = run_cli("genolm-generate", f"model_path={hf}", "n=2", "length=20", "report.enabled=true",
                  f"report.reference_fasta=[{empty}]", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}")
    assert bad.returncode == 1 and "no FASTA records" in bad.stderr


def greedy_from(model, tok, first: int, steps: int) -> str:
    """Argmax stepping from one start token, special tokens and N banned (as generate_dna bans them)."""
    ids, banned = [first], list(tok.all_special_ids) + [tok.convert_tokens_to_ids("N")]
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1]
            logits[banned] = float("-inf")
            ids.append(int(logits.argmax()))
    return "".join(tok.convert_ids_to_tokens(ids[1:]))


def test_start_token_is_the_first_token_sampling_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    model, tok = tiny_lm(char())
    seen: list[list[int]] = []
    real = model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs["input_ids"][:, 0].tolist())
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    for start, token in [("sep", "[SEP]"), ("bos", "[CLS]")]:
        seen.clear()
        out = generate_dna(model, tok, n=3, length=20, greedy=True, progress=False, start=start)
        assert {i for row in seen for i in row} == {tok.convert_tokens_to_ids(token)}
        assert out["sequence"][0] == greedy_from(model, tok, tok.convert_tokens_to_ids(token), 20)
    with pytest.raises(GenolmError, match="start='cls'"):
        generate_dna(model, tok, n=1, length=20, progress=False, start="cls")


@pytest.mark.subprocess
def test_cli_start_auto_follows_the_training_record(tmp_path: Path) -> None:
    """A model whose run folder records packed chunks is sampled after [SEP], as eval-lm scores it."""
    model, tok = tiny_lm(char())
    hf = export_hf(model, tok, tmp_path / "run" / "hf")
    record = {"data": {"corpus_dir": str(tmp_path), "packing": True}}
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(record))
    model, tok = load_causal_lm(hf)
    for extra, start, token in [([], "sep", "[SEP]"), (["start=bos"], "bos", "[CLS]")]:
        root = tmp_path / start
        res = run_cli("genolm-generate", f"model_path={hf}", "n=2", "length=24", "greedy=true", *extra,
                      f"paths.root_dir={root}", f"paths.data_dir={DATA}")
        assert res.returncode == 0, res.stderr[-3000:]
        (run,) = (root / "logs" / "generate" / "runs").iterdir()
        first = (run / "generated.fa").read_text().splitlines()[1]
        assert first == greedy_from(model, tok, tok.convert_tokens_to_ids(token), 24), start
        assert json.loads((run / "metrics.json").read_text())["start"] == start
    # the rule genolm-eval-lm uses too: sep only for a genolm run that packed its chunks
    from genolm.inference.lm_bits import resolve_start

    assert resolve_start("auto", hf) == "sep" and resolve_start("bos", hf) == "bos"
    assert resolve_start("auto", tmp_path / "run" / "checkpoints" / "last.ckpt") == "sep"
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"data": {**record["data"], "packing": False}}))
    assert resolve_start("auto", hf) == "bos"
    (tmp_path / "run" / "metrics.json").unlink()
    assert resolve_start("auto", hf) == "bos"  # no run record: an outside HF folder
