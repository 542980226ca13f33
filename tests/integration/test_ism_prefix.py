"""Prefix-sharing ISM: the same effects as the generic batched path and the per-mutant loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CHR2, MISTRAL_TF0, tiny_mixtral
from transformers import MixtralForCausalLM, MixtralForSequenceClassification

from genolm.checkpoints import load_classifier
from genolm.data.sequences import iter_records
from genolm.data.tokenizers import encode_many, pretrained
from genolm.errors import GenolmError
from genolm.interpret.ism import (
    classifier_scorer,
    ism_one_by_one,
    lm_scorer,
    mutants,
    saturation_mutagenesis,
)
from genolm.interpret.ism_prefix import (
    PrefixClassifierScorer,
    PrefixLMScorer,
    first_difference,
    prefix_groups,
    prefix_ism_supported,
)
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import fast_mode, use_fast

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tf0():
    return load_classifier(MISTRAL_TF0)


@pytest.fixture(scope="module")
def windows() -> list[str]:
    """Real hg38 sequences of different lengths, one with an N run, one with a single N."""
    seq = next(iter(iter_records(CHR2)))[1].upper()
    clean = [seq[lo : lo + 200] for lo in range(200_000, 400_000, 200) if "N" not in seq[lo : lo + 200]]
    return [clean[0], clean[1][:97], clean[2][:40] + "NNN" + clean[2][43:71],
            clean[3][:18] + "N" + clean[3][19:33]]


@torch.inference_mode()
def test_trunk_last_position_only_equals_the_full_pass() -> None:
    net, _ = tiny_mixtral(MixtralForCausalLM)
    ids = torch.randint(4, net.config.vocab_size, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    last = mask.sum(1) - 1
    rows = torch.arange(3)
    for attention_mask in (None, mask):
        full, _, _ = mixtral_trunk(net, ids, attention_mask)
        got, _, _ = mixtral_trunk(net, ids, attention_mask, last=last)
        torch.testing.assert_close(got[:, 0], full[rows, last], atol=1e-5, rtol=1e-5)
    full, _, kv = mixtral_trunk(net, ids, keep_kv=True)
    prefix = [(k[:, :, :4], v[:, :, :4]) for k, v in kv]
    got, _, _ = mixtral_trunk(net, ids[:, 4:], prefix=prefix, last=last - 4)
    torch.testing.assert_close(got[:, 0], full[rows, last], atol=1e-5, rtol=1e-5)


def test_first_difference_and_groups() -> None:
    rows = [[1, 5, 6, 7, 2], [1, 5, 9, 7, 2], [1, 5, 6, 7, 2, 8], [1, 5, 6], [4, 5, 6, 7, 2]]
    first = first_difference(rows)
    assert first.tolist() == [2, 5, 3, 0]
    lengths = np.array([5, 6, 3, 5])
    groups = prefix_groups(first, lengths, rows=2)
    assert [(s, idx.tolist()) for s, idx in groups] == [(0, [3, 0]), (2, [2, 1])]  # capped at len - 1


@pytest.mark.parametrize("output", ["logit", "prob"])
def test_prefix_ism_equals_generic_batched_path(tf0, windows: list[str], output: str) -> None:
    generic = classifier_scorer(tf0, target_class=1, output=output, device="cpu")
    prefix = PrefixClassifierScorer(tf0, target_class=1, output=output, device="cpu", group_rows=48)
    want, want_ref = saturation_mutagenesis(generic, windows, batch_size=256, progress=False)
    got, got_ref = saturation_mutagenesis(prefix, windows, batch_size=256, progress=False)
    np.testing.assert_allclose(got, want, atol=1e-4 if output == "logit" else 2e-5)
    np.testing.assert_allclose(got_ref, want_ref, atol=1e-5)
    np.testing.assert_allclose(prefix(windows), generic(windows), atol=1e-5)
    assert np.abs(got[0]).max() > (1e-2 if output == "logit" else 1e-4)  # the model responds


def test_prefix_ism_equals_per_mutant_loop(tf0, windows: list[str]) -> None:
    generic = classifier_scorer(tf0, target_class=1, output="logit", device="cpu")
    prefix = PrefixClassifierScorer(tf0, target_class=1, output="logit", device="cpu")
    seqs = windows[2:]  # the short ones with N (the loop is slow)
    got, _ = saturation_mutagenesis(prefix, seqs, batch_size=7, progress=False)  # many small groups
    for row, seq in enumerate(seqs):
        np.testing.assert_allclose(got[row, :, : len(seq)], ism_one_by_one(generic, seq), atol=1e-4)
    assert np.count_nonzero(got[1, :, 18]) >= 3  # N: every base is a substitution


def test_mutations_change_tokenization_and_prefixes_vary(tf0, windows: list[str]) -> None:
    """The sequences exercise what makes the path non-trivial: token counts and first differences vary."""
    seq = windows[0]
    rows = encode_many(tf0.tokenizer, [seq, *mutants(seq)[0]])
    first = first_difference(rows)
    assert len({len(r) for r in rows}) > 1 and first.min() <= 1 and first.max() >= len(rows[0]) - 2
    ref, scores = PrefixClassifierScorer(tf0, device="cpu").variants(seq, [seq, seq[:150]])
    generic = classifier_scorer(tf0, target_class=1, output="logit", device="cpu")
    np.testing.assert_allclose([ref, *scores], generic([seq, seq, seq[:150]]), atol=1e-5)


def test_unsupported_models_fall_back() -> None:
    net, tok = tiny_mixtral(MixtralForSequenceClassification)
    assert not prefix_ism_supported(net)  # a raw transformers model: genolm's kernels are off
    use_fast(net)
    assert prefix_ism_supported(net)
    assert not prefix_ism_supported(object())
    with fast_mode(net, False):
        assert not prefix_ism_supported(net)

    class Module:
        net = object()

    with pytest.raises(GenolmError, match="MixtralForSequenceClassification"):
        PrefixClassifierScorer(Module())


def test_prefix_lm_ism_equals_generic_and_loop(windows: list[str]) -> None:
    """A causal LM with the BPE tokenizer (tf0's trunk, a seeded new head): total log-likelihoods."""
    torch.manual_seed(0)
    model = MixtralForCausalLM.from_pretrained(MISTRAL_TF0).eval()
    use_fast(model)
    tok = pretrained(MISTRAL_TF0)
    generic = lm_scorer(model, tok, device="cpu")
    prefix = PrefixLMScorer(model, tok, device="cpu", group_rows=32)
    assert prefix_ism_supported(model)
    seqs = [windows[1], windows[2], windows[3]]
    want, want_ref = saturation_mutagenesis(generic, seqs, batch_size=256, progress=False)
    got, got_ref = saturation_mutagenesis(prefix, seqs, batch_size=256, progress=False)
    np.testing.assert_allclose(got, want, atol=1e-4)  # sums of ~40 token log-probabilities
    np.testing.assert_allclose(got_ref, want_ref, atol=1e-4)
    np.testing.assert_allclose(prefix(seqs), generic(seqs), atol=1e-4)
    np.testing.assert_allclose(got[2, :, : len(seqs[2])], ism_one_by_one(generic, seqs[2]), atol=1e-4)
    assert np.abs(got[0]).max() > 0.1
