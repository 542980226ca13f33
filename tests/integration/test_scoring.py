"""Zero-shot scoring: invariances, hand-computed LLR, reports, VCF windows, bad input, CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pytest
import torch
from helpers import CHR2, DATA, REPO, run_cli, tiny_lm, write_fasta
from sklearn.metrics import roc_auc_score

from genolm.data.tokenizers import pretrained
from genolm.errors import GenolmError
from genolm.export import export_hf
from genolm.inference.batches import forward_batch, pad_batch, pool
from genolm.inference.parallel import cpu_workers, map_batches
from genolm.models.fast.fused_loss import token_log_probs
from genolm.models.fast.mixtral import mixtral_hidden_states
from genolm.models.fast.switch import fast_mode
from genolm.scoring.effects import score_variants
from genolm.scoring.pairs import forward_pairs, shared_prefix_length
from genolm.scoring.report import auroc, group_report
from genolm.scoring.variants import read_fasta_pairs, read_table_pairs, read_vcf_windows

SNP = DATA / "SNP"
sys.path.insert(0, str(REPO / "experiments" / "benchmarks"))
from bench_baselines import score_pairs_one_by_one  # noqa: E402  (the benchmarks' baseline)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(pretrained(DATA / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0"))


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return read_fasta_pairs(SNP / "SNPexon_ref_201b.fasta.gz", SNP / "SNPexon_alt_201b.fasta.gz",
                            "exon", limit=24)


def test_identical_pairs_score_zero(lm, pairs) -> None:
    out = score_variants(*lm, pairs["ref"], pairs["ref"], progress=False)
    assert np.allclose(out[["l2", "cosine", "llr"]].to_numpy(), 0, atol=1e-5)
    assert (out["ref_ll"] < 0).all()


@pytest.mark.parametrize("pooling", ["mean", "max", "last", "logits_max"])
def test_batch_size_and_padding_side_do_not_matter(lm, pairs, pooling: str) -> None:
    model, tok = lm
    ref, alt = pairs["ref"].tolist(), pairs["alt"].tolist()
    alt[3] = alt[3][:150]  # a shorter window forces padding inside the batch
    ref[3] = ref[3][:150]
    one = score_variants(model, tok, ref, alt, batch_size=1, pooling=pooling, progress=False)
    tok.padding_side = "left"
    try:
        many = score_variants(model, tok, ref, alt, batch_size=7, pooling=pooling, progress=False)
    finally:
        tok.padding_side = "right"
    # float32 kernels differ by ~1e-6 per token between batch shapes; sums of ~40 tokens
    # (|ref_ll| ~ 350) therefore agree to ~1e-4, distances to ~1e-5
    assert np.allclose(one[["l2", "cosine"]], many[["l2", "cosine"]], rtol=1e-4, atol=1e-5)
    assert np.allclose(one[["llr", "ref_ll"]], many[["llr", "ref_ll"]], rtol=0, atol=2e-4)
    assert (one["l2"] > 0).all()


def test_llr_matches_hand_computation(lm, pairs) -> None:
    model, tok = lm
    out = score_variants(model, tok, pairs["ref"][:3], pairs["alt"][:3], progress=False)
    for i in range(3):
        lls = []
        for seq in (pairs["ref"][i], pairs["alt"][i]):
            ids = tok(seq)["input_ids"]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            lls.append(sum(float(torch.log_softmax(logits[t - 1], -1)[ids[t]]) for t in range(1, len(ids))))
        assert out["ref_ll"][i] == pytest.approx(lls[0], abs=1e-3)
        assert out["llr"][i] == pytest.approx(lls[1] - lls[0], abs=1e-3)
    loop = score_pairs_one_by_one(model, tok, pairs["ref"][:3], pairs["alt"][:3])
    assert np.allclose(loop["llr"], out["llr"], atol=1e-4) and np.allclose(loop["l2"], out["l2"], atol=1e-5)
    trunk_only = score_pairs_one_by_one(model, tok, pairs["ref"][:3], pairs["alt"][:3], likelihood=False)
    assert list(trunk_only) == ["l2"] and np.allclose(trunk_only["l2"], out["l2"], atol=1e-5)


def test_shared_prefix_pass_equals_two_independent_passes(lm, pairs) -> None:
    """Pairs of unequal lengths (an indel-like pair), an identical pair and ordinary SNVs: the
    shared-prefix pass gives the embeddings and likelihoods of separate full forward passes."""
    model, tok = lm
    ref, alt = pairs["ref"][:6].tolist(), pairs["alt"][:6].tolist()
    alt[1] = alt[1][:120] + alt[1][125:]  # a deletion: shorter alt
    alt[2] = ref[2]  # identical
    r, a = (pad_batch(tok(x)["input_ids"], tok.pad_token_id) for x in (ref, alt))
    shared = shared_prefix_length(r, a)
    assert 1 < shared < r[0].shape[1] // 2 + 5  # the SNVs sit mid-window
    got = forward_pairs(model, r, a, "mean", pool)
    with fast_mode(model, False):
        emb_r, ll_r = forward_batch(model, *r, "mean")
        emb_a, ll_a = forward_batch(model, *a, "mean")
    assert torch.allclose(got["emb_ref"], emb_r, atol=1e-5)
    assert torch.allclose(got["emb_alt"], emb_a, atol=1e-5)
    assert torch.allclose(got["ref_ll"], ll_r, atol=2e-4)
    assert torch.allclose(got["llr"], ll_a - ll_r, atol=2e-4)
    assert abs(got["llr"][2]) < 1e-4 and abs(got["llr"][0]) > 1e-2
    assert set(forward_pairs(model, r, a, "max", pool, likelihood=False)) == {"emb_ref", "emb_alt"}


def test_pairs_differing_at_the_first_token_share_nothing(lm) -> None:
    """Without a start token a variant at position 0 leaves no shared prefix: alt runs in full."""
    model, _ = lm
    ref = torch.tensor([[7, 8, 9, 10, 11], [12, 13, 14, 15, 16]])
    alt = ref.clone()
    alt[0, 0] = 20
    ones = torch.ones_like(ref)
    assert shared_prefix_length((ref, ones), (alt, ones)) == 0
    got = forward_pairs(model, (ref, ones), (alt, ones), "mean", pool)
    with fast_mode(model, False):
        emb_r, ll_r = forward_batch(model, ref, ones, "mean")
        emb_a, ll_a = forward_batch(model, alt, ones, "mean")
    assert torch.allclose(got["emb_alt"], emb_a, atol=1e-5)
    assert torch.allclose(got["llr"], ll_a - ll_r, atol=1e-4) and abs(float(got["llr"][1])) < 1e-5


def test_worker_threads_give_the_same_scores_and_restore_torch_threads(lm, pairs) -> None:
    model, tok = lm
    ref, alt = pairs["ref"].tolist(), pairs["alt"].tolist()
    threads = torch.get_num_threads()
    one = score_variants(model, tok, ref, alt, batch_size=5, workers=1, progress=False)
    two = score_variants(model, tok, ref, alt, batch_size=5, workers=3, progress=False)
    assert torch.get_num_threads() == threads
    assert np.allclose(one[["l2", "cosine"]], two[["l2", "cosine"]], rtol=1e-4, atol=1e-5)
    assert np.allclose(one[["llr", "ref_ll"]], two[["llr", "ref_ll"]], rtol=0, atol=2e-4)
    assert (one["id"] == two["id"]).all() and len(two) == len(ref)


def test_scoring_in_inference_mode_leaves_caches_usable_for_training(lm, pairs) -> None:
    """Rotary tables, the rotary pair order and the head's scratch buffers are cached; made in
    inference mode they would break a later backward pass (or write) outside it."""
    model, tok = lm
    score_variants(model, tok, pairs["ref"][:4].tolist(), pairs["alt"][:4].tolist(), progress=False)
    ids = torch.tensor([tok(pairs["ref"][0])["input_ids"]])
    hidden, aux = mixtral_hidden_states(model, ids)
    (hidden.square().mean() + aux).backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        h = hidden.detach()[0, :-1]
        want = torch.log_softmax(model.lm_head(h), -1).gather(1, ids[0, 1:, None]).squeeze(1)
        assert torch.allclose(token_log_probs(h, model.lm_head.weight, ids[0, 1:]), want, atol=1e-5)


def test_pad_batch_right_pads() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 10]], 3)
    assert ids.tolist() == [[5, 6, 7], [8, 3, 3], [9, 10, 3]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]] and ids.dtype == mask.dtype == torch.long


def test_map_batches_keeps_order_and_raises() -> None:
    seen = []

    def work(x: int) -> int:
        seen.append(torch.get_num_threads())
        if x == 7:
            raise GenolmError("batch 7 failed")
        return x * x

    assert list(map_batches(work, range(6), 3)) == [x * x for x in range(6)]
    assert set(seen) == {max(1, torch.get_num_threads() // 3)}
    with pytest.raises(GenolmError, match="batch 7"):
        list(map_batches(work, range(10), 2))
    assert cpu_workers(torch.device("cpu"), None) == min(torch.get_num_threads(), 8)
    assert cpu_workers(torch.device("cuda"), 4) == 1


def test_group_auroc_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    scores = pd.DataFrame({"group": ["exon"] * 300 + ["intron"] * 200,
                           "llr": np.r_[rng.normal(0.3, 1, 300), rng.normal(0, 1, 200)].round(1)})
    table = group_report(scores, ["llr"], "exon", "intron", n_boot=200)
    expected = roc_auc_score(scores["group"] == "exon", scores["llr"])
    assert table["auroc"][0] == pytest.approx(expected, abs=1e-12)
    assert table["ci_low"][0] < expected < table["ci_high"][0]
    assert auroc(np.array([2.0, 3.0]), np.array([1.0])) == 1.0


def test_vcf_windows_centred_and_checked(tmp_path: Path) -> None:
    genome = pyfaidx.Fasta(str(CHR2), indexname=str(tmp_path / "g.fai"),
                           gzi_indexname=str(tmp_path / "g.gzi"), sequence_always_upper=True)
    seq = genome["chr2"]
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT"]
    for pos in (200_000, 500_001, 1_000_123):
        ref = str(seq[pos - 1 : pos])
        alt = "A" if ref != "A" else "C"
        lines.append(f"chr2\t{pos}\tv{pos}\t{ref}\t{alt}")
    lines += ["chr2\t300000\tdel\tAC\tA", "chr2\t300000\tbadref\tN\tA", "chr2\t50\tedge\tN\tA",
              "chr9\t100\tother\tA\tC"]
    (tmp_path / "v.vcf").write_text("\n".join(lines) + "\n")
    pairs, skipped = read_vcf_windows(tmp_path / "v.vcf", CHR2, 201, tmp_path / "idx")
    assert skipped == {"indel": 1, "ref_mismatch": 1, "off_chromosome": 1, "unknown_chromosome": 1}
    assert pairs["id"].tolist() == ["v200000", "v500001", "v1000123"]
    for (_, row), pos in zip(pairs.iterrows(), (200_000, 500_001, 1_000_123), strict=True):
        assert row["ref"] == str(seq[pos - 101 : pos + 100])
        assert row["ref"][100] == str(seq[pos - 1 : pos]) != row["alt"][100]
        assert row["ref"][:100] == row["alt"][:100] and row["ref"][101:] == row["alt"][101:]


def test_bad_inputs(tmp_path: Path) -> None:
    a = write_fasta(tmp_path / "a.fa", {"s1": "ACGT" * 10, "s2": "ACGT" * 10})
    b = write_fasta(tmp_path / "b.fa", {"s1": "ACGA" * 10})
    with pytest.raises(GenolmError, match="has 2 records but .* has 1"):
        read_fasta_pairs(a, b)
    c = write_fasta(tmp_path / "c.fa", {"s1": "ACGT" * 10, "s2": "ACGT" * 9})
    with pytest.raises(GenolmError, match="pair 's2': ref has 40 bases, alt 36"):
        read_fasta_pairs(a, c)
    (tmp_path / "t.tsv").write_text("id\tref\talt\nx\tACGT\tACZT\n")
    with pytest.raises(GenolmError, match=r"record 'x': invalid letter 'Z' at position 3"):
        read_table_pairs(tmp_path / "t.tsv")
    (tmp_path / "e.tsv").write_text("id\tref\talt\n")
    with pytest.raises(GenolmError, match="no rows"):
        read_table_pairs(tmp_path / "e.tsv")
    (tmp_path / "only_bad.vcf").write_text("chr2\t300000\tx\tAC\tA\n")
    with pytest.raises(GenolmError, match="no scorable SNV left"):
        read_vcf_windows(tmp_path / "only_bad.vcf", CHR2, 201, tmp_path / "idx")
    gz = write_fasta(tmp_path / "g.fa.gz", {"chr1": "ACGT" * 100}, compress="gzip")
    with pytest.raises(GenolmError, match="must be BGZF"):
        read_vcf_windows(tmp_path / "only_bad.vcf", gz, 201, tmp_path / "idx")


@pytest.mark.subprocess
def test_cli_scores_and_reports(lm, tmp_path: Path) -> None:
    hf = export_hf(*lm, tmp_path / "hf")
    res = run_cli("genolm-score", f"model_path={hf}", "limit=40", "report.n_boot=50",
                  f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "score" / "runs").iterdir()
    scores = pd.read_csv(run / "scores.tsv", sep="\t")
    assert len(scores) == 80 and scores["group"].value_counts().to_dict() == {"exon": 40, "intron": 40}
    assert {"l2", "cosine", "llr", "ref_ll"} <= set(scores.columns)
    assert "AUROC" in (run / "report.md").read_text() and (run / "report.png").stat().st_size > 10_000
    assert "llr: AUROC exon vs intron" in res.stdout
    bad = run_cli("genolm-score", f"model_path={tmp_path}/none", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}", "limit=5")
    assert bad.returncode == 1 and "neither a genolm .ckpt file nor a Hugging Face folder" in bad.stderr
