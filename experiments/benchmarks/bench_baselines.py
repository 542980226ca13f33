"""The benchmarks' baselines: the course's way of running a model, kept out of the library.

- :func:`score_pairs_one_by_one`: one plain transformers forward per window, no batching;
- :func:`plain_oracle`: the classifier oracle with genolm's kernels off, one call per batch;
- :func:`generate_without_cache`: one sequence at a time, the whole prefix recomputed per token.

Each runs with genolm's kernels switched off (:func:`genolm.models.fast.switch.fast_mode`) and
restores the model's switch afterwards. Scripts import this file next to them; tests import it
by path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.data.tokenizers import bases_per_token
from genolm.design.oracle import classifier_oracle
from genolm.generation.sampling import EnoughBases, banned_token_ids, tokens_to_dna
from genolm.inference.batches import encode, forward_batch, pool
from genolm.inference.lm_bits import start_token
from genolm.models.fast.switch import fast_mode


@torch.no_grad()
def _embed_one(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    return pool(hidden, hidden, mask, pooling)


def score_pairs_one_by_one(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast,
                           ref: Sequence[str], alt: Sequence[str], pooling: str = "mean",
                           likelihood: bool = True) -> pd.DataFrame:
    """The course's way: one transformers forward pass per sequence, no batching (the speed baseline).

    Without ``likelihood`` only the trunk runs (hidden-state poolings), as for embedding scores.
    """
    rows = []
    max_pos = int(getattr(model.config, "max_position_embeddings", 1 << 30))
    model = model.eval()
    with fast_mode(model, False):
        for r, a in zip(ref, alt, strict=True):
            if likelihood or pooling == "logits_max":
                (e_r, ll_r), (e_a, ll_a) = (forward_batch(model, *encode(tokenizer, [s], max_pos), pooling)
                                            for s in (r, a))
                rows.append({"l2": float((e_r - e_a).norm()), "llr": float(ll_a - ll_r)})
                continue
            e_r, e_a = (_embed_one(model, *encode(tokenizer, [s], max_pos), pooling) for s in (r, a))
            rows.append({"l2": float((e_r - e_a).norm())})
    return pd.DataFrame(rows)


def plain_oracle(module, **kwargs) -> Callable[[list[str]], np.ndarray]:
    """:func:`genolm.design.oracle.classifier_oracle` run on transformers' forward (kernels off)."""
    score = classifier_oracle(module, **kwargs)

    def plain(seqs: list[str]) -> np.ndarray:
        with fast_mode(module.net, False):
            return score(seqs)

    return plain


@torch.no_grad()
def generate_without_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, length: int,
                           seed: int = 0, start: str = "bos") -> str:
    """One sampled sequence of ``length`` bases, every step recomputing the whole prefix (no KV cache).

    Samples as :func:`genolm.generation.sampling.generate_dna` does at temperature 1 (same start
    token, banned tokens and stop rule), on the model's device, with genolm's kernels off.
    """
    dev = next(model.parameters()).device
    lengths = torch.from_numpy(bases_per_token(tokenizer))
    ids = torch.tensor([[start_token(tokenizer, start)]], device=dev)
    torch.manual_seed(seed)
    with fast_mode(model, False):
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             max_new_tokens=length, bad_words_ids=[[i] for i in banned_token_ids(tokenizer)],
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=None, use_cache=False,
                             stopping_criteria=[EnoughBases(lengths, 1, length)])
    return tokens_to_dna(tokenizer.convert_ids_to_tokens(out[0, 1:].tolist()))[:length]
