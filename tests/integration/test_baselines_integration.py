"""Strand augmentation on a real chr22 corpus (the Markov and bits-per-base half: tests/unit)."""

from __future__ import annotations

import pytest
import torch
from helpers import dimer_tokenizer

from genolm.data.tokenizers import char
from genolm.errors import GenolmError


def test_reverse_complement_and_strand_augmentation(tmp_path, cache_dir) -> None:
    from helpers import compose_cfg, tiny_overrides
    from hydra.utils import instantiate

    from genolm.data.sequences import reverse_complement
    from genolm.data.tokenizers import complement_ids

    assert reverse_complement("ACGTNacgtnAAC") == "GTTnacgtNACGT"
    assert reverse_complement(reverse_complement("GATTACANNc")) == "GATTACANNc"
    tok = char()
    comp = complement_ids(tok)
    ids = tok("ACGTTN", add_special_tokens=False)["input_ids"]
    assert tok.decode(comp[ids[::-1]]).replace(" ", "") == reverse_complement("ACGTTN")
    with pytest.raises(GenolmError, match="single-base tokenizer"):
        complement_ids(dimer_tokenizer())

    for packing in ("true", "false"):
        cfg = compose_cfg("pretrain", tiny_overrides(tmp_path / packing, cache_dir) + [
            "data.rc_aug=true", f"data.packing={packing}"])
        dm = instantiate(cfg.data, tokenizer=instantiate(cfg.tokenizer))
        dm.setup("fit")
        train, val = dm.datasets["train"], dm.datasets["val"]
        n = len(train) // 2
        assert len(train) == 2 * n and len(val) == val.n  # validation stays on the forward strand
        for i in (0, 7, n - 1):
            fwd, rev = train[i], train[i + n]
            assert fwd["input_ids"].shape == rev["input_ids"].shape  # lengths never change
            # the reverse item is the forward token stream reversed and complemented
            stream = torch.cat([fwd["input_ids"][:1], fwd["labels"]])
            back = torch.cat([rev["input_ids"][:1], rev["labels"]])
            if packing == "true":
                assert torch.equal(back, torch.from_numpy(comp[stream.numpy()[::-1]]))
            else:  # [BOS] chunk [EOS] keeps its ends: only the chunk turns around
                assert torch.equal(back[1:-1], torch.from_numpy(comp[stream.numpy()[1:-1][::-1]]))
                assert back[0] == stream[0] and back[-1] == stream[-1]
