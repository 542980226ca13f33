"""Interpretation library: ISM against a naive loop, IG completeness, a planted motif recovered, TOMTOM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import DATA, MISTRAL_TF0, tiny_mixtral
from transformers import MixtralForCausalLM, MixtralForSequenceClassification

from genolm.checkpoints import load_classifier
from genolm.data.labeled import read_labeled_csv
from genolm.data.sequences import one_hot
from genolm.inference.batches import sequence_log_likelihood
from genolm.interpret.gradients import (
    base_token_ids,
    classifier_integrated_gradients,
    embedding_integrated_gradients,
    onehot_integrated_gradients,
)
from genolm.interpret.ism import (
    classifier_scorer,
    ism_hypothetical,
    ism_one_by_one,
    lm_scorer,
    mutants,
    saturation_mutagenesis,
)
from genolm.interpret.motifs import (
    Pattern,
    jaspar_targets,
    match_motifs,
    read_factors,
    reverse_complement_matrix,
)

pytestmark = pytest.mark.usefixtures("one_thread")
JASPAR = DATA / "motifs" / "JASPAR2022_vertebrates.pfm"
FACTORS = DATA / "motifs" / "JASPAR2022_vertebrates.motif2factors.txt"


@pytest.fixture(scope="module")
def tf0():
    return load_classifier(MISTRAL_TF0)


@pytest.fixture(scope="module")
def positives() -> list[str]:
    test = read_labeled_csv(DATA / "GUE" / "tf" / "0" / "test.csv")
    return test.loc[test["label"] == 1, "sequence"].tolist()


def test_mutants_and_one_hot() -> None:
    seqs, pos, base = mutants("ACgN")
    assert len(seqs) == 3 * 3 + 4 and set(pos.tolist()) == {0, 1, 2, 3}
    assert all(len(s) == 4 and sum(a != b for a, b in zip(s, "ACGN", strict=True)) == 1 for s in seqs)
    assert "ACGN" not in seqs and "ACGA" in seqs and "TCGN" in seqs
    oh = one_hot(["ACgN", "T"])
    assert oh.shape == (2, 4, 4)
    assert oh[0].argmax(1)[:3].tolist() == [0, 1, 2] and oh[0, 3].sum() == 0 and oh[1, 1:].sum() == 0


def test_batched_ism_equals_naive_loop_on_real_classifier(tf0, positives: list[str]) -> None:
    score = classifier_scorer(tf0, target_class=1, output="logit", device="cpu")
    seqs = [positives[0], positives[1][:57], positives[2][:33]]
    effects, ref = saturation_mutagenesis(score, seqs, batch_size=100, progress=False)  # 2-4 chunks each
    for row, seq in enumerate(seqs):
        naive = ism_one_by_one(score, seq)
        np.testing.assert_allclose(effects[row, :, : len(seq)], naive, atol=2e-4)
        assert ref[row] == pytest.approx(float(score([seq])[0]), abs=1e-5)
    assert np.abs(effects[0]).max() > 1e-2  # the model does respond to single substitutions


def test_batched_ism_shape_and_zeros(tf0, positives: list[str]) -> None:
    score = classifier_scorer(tf0, target_class=1, output="prob", device="cpu")
    seqs = [positives[3][:40], positives[4][:25] + "N" + positives[4][26:31]]
    effects, _ = saturation_mutagenesis(score, seqs, batch_size=512, progress=False)
    assert effects.shape == (2, 4, 40)
    oh = one_hot(seqs)
    observed = oh.transpose(0, 2, 1) == 1
    assert np.all(effects[observed] == 0)
    assert np.all(effects[1, :, 31:] == 0)  # past the end
    assert np.count_nonzero(effects[0]) > 0.9 * 3 * 40
    assert np.count_nonzero(effects[1, :, 25]) >= 3  # N: every base is a substitution
    actual, hyp = ism_hypothetical(effects, oh)
    np.testing.assert_allclose(hyp[0].sum(-1), 0, atol=1e-6)
    assert np.all(actual[1, 25] == 0) and np.all(hyp[1, 31:] == 0)
    np.testing.assert_allclose(actual.sum(-1)[0], -effects[0].mean(0), atol=1e-6)


def test_lm_ism_is_the_change_of_total_log_likelihood() -> None:
    model, tok = tiny_mixtral(MixtralForCausalLM)
    score = lm_scorer(model, tok, device="cpu")
    seq = "ACGTTGCAGGATCCAT"
    effects, ref = saturation_mutagenesis(score, [seq], batch_size=7, progress=False)
    ids = torch.tensor([tok(seq)["input_ids"]])
    with torch.no_grad():
        expected = sequence_log_likelihood(model(input_ids=ids).logits, ids, torch.ones_like(ids))
    assert ref[0] == pytest.approx(float(expected[0]), abs=1e-4)
    np.testing.assert_allclose(effects[0], ism_one_by_one(score, seq), atol=1e-4)


def test_ism_and_ig_hypothetical_agree_on_a_linear_model() -> None:
    rng = np.random.default_rng(1)
    weights = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return (x * weights).sum((1, 2))

    seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(3)]
    oh = one_hot(seqs)
    effects, _ = saturation_mutagenesis(lambda s: forward(torch.from_numpy(one_hot(s))).numpy(), seqs,
                                        progress=False)
    ism_actual, ism_hyp = ism_hypothetical(effects, oh)
    ig_actual, ig_hyp, delta = onehot_integrated_gradients(forward, oh, steps=8)
    centred = (weights - weights.mean(1, keepdim=True)).numpy()
    np.testing.assert_allclose(ism_hyp, np.broadcast_to(centred, ism_hyp.shape), atol=1e-5)
    np.testing.assert_allclose(ig_hyp, ism_hyp, atol=1e-5)
    np.testing.assert_allclose(ig_actual, ism_actual, atol=1e-5)
    assert np.abs(delta).max() < 1e-4


def test_onehot_ig_on_a_single_base_transformers_classifier() -> None:
    net, tok = tiny_mixtral(MixtralForSequenceClassification)
    assert base_token_ids(tok) == [tok.get_vocab()[b] for b in "ACGT"]
    seqs = ["ACGTTGCAGGATCCATGA", "TTGACNNGTCA"]
    got = classifier_integrated_gradients(net, tok, seqs, target=1, steps=64, progress=False)
    assert got["actual"].shape == (2, 18, 4) and np.all(got["actual"][1, 5:7] == 0)
    table = net.get_input_embeddings()
    for row, seq in enumerate(seqs):
        ids = torch.tensor([tok(seq)["input_ids"]])
        with torch.no_grad():
            f_x = net(input_ids=ids).logits[0, 1]
            base = table(ids)
            is_acgt = torch.tensor([[t in base_token_ids(tok) for t in ids[0].tolist()]])
            mean_base = table(torch.tensor(base_token_ids(tok))).mean(0)
            f_ref = net(inputs_embeds=torch.where(is_acgt[..., None], mean_base, base)).logits[0, 1]
        total = float(got["actual"][row].sum())
        assert abs(float(f_x - f_ref)) > 0.05
        assert total == pytest.approx(float(f_x - f_ref), abs=0.02 * abs(float(f_x - f_ref)) + 1e-3)
        assert abs(got["delta"][row]) < 0.02 * abs(float(f_x - f_ref)) + 1e-3


def test_embedding_ig_spreads_tokens_evenly_and_keeps_the_sum(tf0, positives: list[str]) -> None:
    assert base_token_ids(tf0.tokenizer) is None  # BPE: multi-base tokens
    seq = positives[5]
    per_base, delta = embedding_integrated_gradients(tf0.net, tf0.tokenizer, seq, target=1, steps=16)
    enc = tf0.tokenizer(seq, return_offsets_mapping=True)
    spans = [(lo, hi) for lo, hi in enc["offset_mapping"] if hi > lo]
    assert sum(hi - lo for lo, hi in spans) == len(seq)
    for lo, hi in spans:
        assert np.allclose(per_base[lo:hi], per_base[lo])
    ids = torch.tensor([enc["input_ids"]])
    with torch.no_grad():
        emb = tf0.net.get_input_embeddings()(ids)
        special = torch.tensor([[t in tf0.tokenizer.all_special_ids for t in enc["input_ids"]]])
        f_x = tf0.net(input_ids=ids).logits[0, 1]
        f_ref = tf0.net(inputs_embeds=emb * special[..., None]).logits[0, 1]
    assert float(per_base.sum()) - delta == pytest.approx(float(f_x - f_ref), abs=1e-3)


def test_factors_and_tomtom_find_a_jaspar_motif_on_either_strand() -> None:
    factors = read_factors(FACTORS)
    assert factors["MA0004.1"] == "Arnt" and "Ahr" in factors["MA0006.1"].split(",")
    targets = jaspar_targets(JASPAR, FACTORS)
    assert len(targets) == 838 and np.allclose([t.ppm.sum(1) for t in targets[:5]][0], 1)
    rest = next(t for t in targets if t.name == "REST")
    patterns = [Pattern("fwd", 1, rest.ppm, rest.ppm, rest.ppm),
                Pattern("rev", 1, reverse_complement_matrix(rest.ppm), rest.ppm, rest.ppm)]
    table = match_motifs(patterns, targets, top=3)
    best = table[table["rank"] == 1].set_index("pattern")
    assert best.loc["fwd", "motif_id"] == rest.motif_id and best.loc["fwd", "strand"] == "+"
    assert best.loc["rev", "motif_id"] == rest.motif_id and best.loc["rev", "strand"] == "-"
    assert (table["q_value"] >= table["p_value"]).all() and best["q_value"].max() < 1e-6
    assert table.groupby("pattern")["p_value"].apply(lambda p: p.is_monotonic_increasing).all()
