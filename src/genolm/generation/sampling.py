"""Batched, KV-cached DNA sampling from a causal LM, with exact base lengths and no special tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast, StoppingCriteria, StoppingCriteriaList

from genolm.data.sequences import check_dna, gc_fraction
from genolm.data.tokenizers import bases_per_token
from genolm.errors import GenolmError
from genolm.inference.batches import forward_batch, max_positions, pad_batch, resolve_device
from genolm.inference.lm_bits import start_rows, start_token
from genolm.inference.parallel import torch_threads

# intra-op threads of CPU sampling (and the log-likelihood pass after it): a decoding step is a few
# hundred kernels over one token per row, too small to split, and on a busy machine every kernel
# waited for a descheduled second thread (demo model, 2 shared cores at load ~6, fresh process:
# 46 bases/s with 2 threads, ~800 with 1)
CPU_DECODE_THREADS = 1


class EnoughBases(StoppingCriteria):
    """Stop each sequence once its new tokens cover ``target`` bases."""

    def __init__(self, lengths: torch.Tensor, prompt_len: int, target: int) -> None:
        self.lengths, self.prompt_len, self.target = lengths, prompt_len, target

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        """Per-sequence done flags."""
        new = input_ids[:, self.prompt_len :]
        return self.lengths.to(new.device)[new].sum(1) >= self.target


def check_sampling(temperature: float, top_k: int, top_p: float, length: int, greedy: bool) -> None:
    """Validate sampling settings with one clear message."""
    if not greedy and temperature <= 0:
        raise GenolmError(f"temperature must be > 0 (got {temperature}); use greedy=true for argmax")
    if not 0 < top_p <= 1:
        raise GenolmError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise GenolmError(f"top_k must be >= 0 (0 disables it), got {top_k}")
    if length <= 0:
        raise GenolmError(f"length must be > 0 bases, got {length}")


def banned_token_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Special tokens and tokens holding anything but A, C, G, T (e.g. N): never sampled."""
    specials = set(tokenizer.all_special_ids)
    return sorted(i for tok, i in tokenizer.get_vocab().items()
                  if i in specials or not tok or set(tok) - set("ACGT"))


def tokens_to_dna(tokens: Sequence[str]) -> str:
    """Concatenate token strings (BPE tokens of a DNA vocabulary are base strings)."""
    return "".join(tokens)


def _generate_settings(tokenizer: PreTrainedTokenizerFast, temperature: float, top_k: int, top_p: float,
                       repetition_penalty: float, greedy: bool) -> dict:
    """``generate`` keyword arguments: sampling settings, banned tokens, no EOS, no router loss."""
    sampled = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    return {"do_sample": not greedy, **{k: None if greedy else v for k, v in sampled.items()},
            "repetition_penalty": repetition_penalty,
            "bad_words_ids": [[i] for i in banned_token_ids(tokenizer)],
            "pad_token_id": tokenizer.pad_token_id, "eos_token_id": None, "output_router_logits": False}


@torch.no_grad()
def generate_dna(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, n: int, length: int,
                 prompt: str = "", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 repetition_penalty: float = 1.0, greedy: bool = False, seed: int = 0,
                 batch_size: int = 64, device: str | None = None, progress: bool = True,
                 start: str = "bos", threads: int | None = None) -> pd.DataFrame:
    """Sample ``n`` DNA sequences of exactly ``length`` bases (the prompt included).

    Sampling uses transformers ``generate`` (KV cache) on batches of ``batch_size``. Special
    tokens and tokens with letters other than ACGT are banned, so outputs are pure ACGT; each
    sequence stops once it covers ``length`` bases and is trimmed to exactly that.

    Every sequence is sampled after one start token, ``start`` (see
    :func:`genolm.inference.lm_bits.start_token`): ``sep`` ([SEP]/EOS, what precedes every chunk
    in genolm's packed pretraining) or ``bos`` ([CLS]/BOS, for models trained on
    ``[CLS] seq [SEP]`` rows); :func:`genolm.inference.lm_bits.resolve_start` picks it from a
    model's training record, as ``genolm-eval-lm`` does for scoring (``genolm-generate`` calls it
    for ``start: auto``). The default, ``bos``, keeps library calls as they were before the setting.

    On CPU, sampling and the log-likelihoods run with ``threads`` intra-op threads (default
    :data:`CPU_DECODE_THREADS`; torch's setting is restored afterwards); the router's
    load-balancing loss is not computed.

    Returns:
        DataFrame ``id, sequence, length, gc, log_likelihood`` (model log-likelihood in nats of
        the trimmed sequence's tokens after the start token, summed).

    """
    check_sampling(temperature, top_k, top_p, length, greedy)
    prompt = prompt.upper()
    if prompt:
        check_dna(prompt, "prompt", "prompt")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    lengths = torch.from_numpy(bases_per_token(tokenizer))
    first = start_token(tokenizer, start)
    prefix = [first] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    max_pos = max_positions(model)
    budget = max_pos - len(prefix)
    if length - len(prompt) > budget * int(lengths.max()):
        raise GenolmError(f"{length} bases cannot fit in the model's {max_pos} positions")
    settings = _generate_settings(tokenizer, temperature, top_k, top_p, repetition_penalty, greedy)
    new_bases = length - len(prompt)
    settings.update(max_new_tokens=min(budget, max(1, new_bases)),
                    stopping_criteria=StoppingCriteriaList([EnoughBases(lengths, len(prefix), new_bases)]))
    decode_threads = threads if threads is not None else CPU_DECODE_THREADS if dev.type == "cpu" else None
    sequences = []
    generator_seed = torch.Generator().manual_seed(seed)
    with torch_threads(decode_threads):
        for lo in tqdm(range(0, n, batch_size), desc="generating", unit="batch", disable=not progress):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
            ids = torch.tensor([prefix] * min(batch_size, n - lo), device=dev)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **settings)
            for row in out[:, len(prefix) :].tolist():
                toks = tokenizer.convert_ids_to_tokens([t for t in row if t != tokenizer.pad_token_id])
                sequences.append((prompt + tokens_to_dna(toks))[:length])
        short = sum(len(s) < length for s in sequences)
        if short:
            raise GenolmError(f"{short} sequences ended before {length} bases (model positions exhausted)")
        return annotate(model, tokenizer, sequences, batch_size, start)


def annotate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, sequences: list[str],
             batch_size: int = 64, start: str = "bos") -> pd.DataFrame:
    """Table of sequences with length, GC share and log-likelihood given the ``start`` token."""
    max_pos = max_positions(model)
    dev = next(model.parameters()).device
    lls = []
    for lo in range(0, len(sequences), batch_size):
        rows = start_rows(tokenizer, sequences[lo : lo + batch_size], start, max_pos)
        ids, mask = pad_batch(rows, tokenizer.pad_token_id)
        lls.append(forward_batch(model, ids.to(dev), mask.to(dev), "mean")[1].cpu().numpy())
    return pd.DataFrame({
        "id": [f"gen{i + 1}" for i in range(len(sequences))], "sequence": sequences,
        "length": [len(s) for s in sequences],
        "gc": [gc_fraction(s) for s in sequences],
        "log_likelihood": np.concatenate(lls) if lls else np.zeros(0)})

