"""Markov-chain baselines and the LM's bits per base on independent windows."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import dimer_tokenizer

from genolm.baselines.markov import MarkovChains
from genolm.data.tokenizers import char
from genolm.errors import GenolmError
from genolm.inference.lm_bits import total_bits_per_base, window_bits


def test_markov_log_probs_equal_hand_counts() -> None:
    # windows never share a context, N breaks one: order-1 pairs A>A A>C C>G C>A; order-2 AA>C AC>G
    chains = MarkovChains(max_order=2, alpha=1.0).fit(["AACG", "ANCA"])
    assert chains.bases_fitted == 7
    expected = [math.log2(5 / 11), math.log2(2 / 6), math.log2(1 / 5)]
    np.testing.assert_allclose(chains.log2_probs("ACA", order=2), expected)
    np.testing.assert_allclose(chains.log2_probs("ANA", order=2), [math.log2(5 / 11)] * 2)
    np.testing.assert_allclose(chains.log2_probs("acA", order=1), expected[:2] + [math.log2(2 / 6)])
    bits = chains.bits_per_base(["ACA"], orders=[0, 2])
    assert bits[2] == pytest.approx(-sum(expected) / 3)
    assert bits[0] == pytest.approx(-(2 * math.log2(5 / 11) + math.log2(3 / 11)) / 3)


def test_markov_learns_a_periodic_sequence_and_rejects_bad_settings() -> None:
    rng = np.random.default_rng(0)
    period = "".join(rng.choice(list("ACGT"), 6))
    chains = MarkovChains(max_order=8).fit([period * 40] * 20)
    bits = chains.bits_per_base([period * 10])
    assert bits[0] > 1.0 and bits[8] < 0.1  # the context determines the next base
    with pytest.raises(GenolmError, match="max_order"):
        MarkovChains(max_order=20)
    with pytest.raises(GenolmError, match="fitted on no A/C/G/T"):
        MarkovChains(2).bits_per_base(["ACGT"])
    with pytest.raises(GenolmError, match="no A/C/G/T base to score"):
        MarkovChains(2).fit(["ACGT"]).bits_per_base(["NNN"])


class UniformPerBase(torch.nn.Module):
    """Logit -len(t) ln 4 for every pure-ACGT token, -inf for the rest, plus a lot of mass on [SEP]."""

    def __init__(self, tok, sep_logit: float = 0.0) -> None:
        super().__init__()
        logits = torch.full((len(tok),), float("-inf"))
        for token, idx in tok.get_vocab().items():
            if token and set(token) <= set("ACGT"):
                logits[idx] = -len(token) * math.log(4)
        logits[tok.sep_token_id] = sep_logit
        self.register_buffer("row", logits)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_position_embeddings=512)

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.row.expand(*input_ids.shape, -1).clone())


@pytest.mark.parametrize("start", ["sep", "bos"])
def test_uniform_model_scores_two_bits_per_base_whatever_the_tokenizer(start: str) -> None:
    rng = np.random.default_rng(1)
    windows = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(5)]
    for tok in (char(), dimer_tokenizer()):
        # a [SEP] logit of +5 holds most of the raw mass: specials are no target and are renormalised away
        table = window_bits(UniformPerBase(tok, sep_logit=5.0), tok, windows, start=start, batch_size=2)
        assert list(table["bases"]) == [40] * 5
        assert total_bits_per_base(table) == pytest.approx(2.0, abs=1e-6)
        assert table["bits_per_base"].to_numpy() == pytest.approx(2.0, abs=1e-6)


def test_window_bits_errors() -> None:
    tok = char()
    model = UniformPerBase(tok)
    with pytest.raises(GenolmError, match="no window"):
        window_bits(model, tok, [])
    with pytest.raises(GenolmError, match="start='cls'"):
        window_bits(model, tok, ["ACGT"], start="cls")
    model.config.max_position_embeddings = 8
    with pytest.raises(GenolmError, match="9 positions .* max_position_embeddings=8"):
        window_bits(model, tok, ["ACGTACGT"])


def test_single_nucleotide_round_trip() -> None:
    tok = char()
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGTN"), 300))
    ids = tok(seq, add_special_tokens=False)["input_ids"]
    assert len(ids) == 300 and tok.unk_token_id not in ids  # one token per base, N included
    assert tok.decode(ids).replace(" ", "") == seq
    wrapped = tok(seq)["input_ids"]
    assert wrapped[0] == tok.cls_token_id and wrapped[-1] == tok.sep_token_id and wrapped[1:-1] == ids
