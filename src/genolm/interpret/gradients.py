"""Integrated-gradients attributions through captum, in two formulations.

**One-hot** (:func:`onehot_integrated_gradients`): for any differentiable ``forward(onehot)`` over
``(B, L, 4)`` inputs (a toy model, or a transformers model whose tokenizer has one token per base
via :func:`hf_onehot_forward`, whose input embedding becomes ``onehot @ E[A, C, G, T]``). The
baseline is the uniform base (0.25 each) at every base position. captum returns
``(x - x') * g`` with ``g`` the path-averaged gradient; since ``x - x'`` is never 0 at a base
position, ``g`` is recovered exactly and gives, in the DeepLIFT / TF-MoDISco convention,

* hypothetical contributions ``g[i, b] - mean_b' g[i, b']`` (what base ``b`` would contribute at
  ``i``, from the multipliers along the path to the observed sequence), and
* actual contributions: the hypothetical one at the observed base. Summed over a position it
  equals captum's attribution of that position, so the completeness axiom (sum = f(x) - f(x'))
  carries over; captum's convergence delta is returned with it.

**Embedding** (:func:`embedding_integrated_gradients`): a tokenizer with multi-base tokens (BPE, as
the shipped DNABERT-2-style Mistral-DNA checkpoints) has no one-hot input to differentiate, so IG
runs over the input embeddings: the baseline zeroes every DNA token's embedding (special tokens
keep theirs), a token's attribution is summed over the embedding dimension and spread evenly over
the bases it covers (its character offsets). That yields per-base contributions but no
hypothetical ones; motif discovery then uses ISM-derived scores (:mod:`genolm.interpret.ism`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.data.sequences import BASES, one_hot
from genolm.data.tokenizers import encode_many
from genolm.errors import GenolmError

Forward = Callable[[torch.Tensor], torch.Tensor]


def onehot_integrated_gradients(forward: Forward, onehot: np.ndarray | torch.Tensor, steps: int = 32,
                                internal_batch_size: int | None = None
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated gradients over one-hot inputs, with hypothetical contributions.

    Args:
        forward: ``(B, L, 4)`` float tensor -> ``(B,)`` scores (differentiable).
        onehot: ``(N, L, 4)``; all-zero rows (``N``, padding) get a zero baseline and no attribution.
        steps: integration steps (Gauss-Legendre, captum's default method).
        internal_batch_size: path points per forward pass (default: all ``N x steps``).

    Returns:
        ``(actual, hypothetical, delta)``: contributions ``(N, L, 4)`` float32 and captum's
        convergence delta ``(N,)`` (sum of attributions minus ``f(x) - f(x')``).

    """
    from captum.attr import IntegratedGradients

    x = torch.as_tensor(np.asarray(onehot), dtype=torch.float32)
    base_pos = x.sum(-1, keepdim=True) > 0
    baseline = 0.25 * base_pos.float().expand_as(x)
    attr, delta = IntegratedGradients(forward).attribute(
        x, baselines=baseline, n_steps=steps, internal_batch_size=internal_batch_size,
        return_convergence_delta=True)
    step = x - baseline  # 0.75 at the observed base, -0.25 elsewhere, 0 at N/padding
    grads = torch.where(step != 0, attr.detach() / torch.where(step != 0, step, 1.0), 0.0)
    hyp = (grads - grads.mean(-1, keepdim=True)) * base_pos
    return ((hyp * x).numpy().astype(np.float32), hyp.numpy().astype(np.float32),
            delta.detach().double().numpy())


def base_token_ids(tokenizer: PreTrainedTokenizerFast) -> list[int] | None:
    """Token ids of A, C, G, T when the tokenizer has one token per base, else ``None``."""
    vocab = tokenizer.get_vocab()
    if any(b not in vocab for b in BASES):
        return None
    probe = "ACGTTGCAAACCGGTTAGCT"
    ids = encode_many(tokenizer, [probe], add_special_tokens=False)[0]
    return [vocab[b] for b in BASES] if ids == [vocab[b] for b in probe] else None


def _score(logits: torch.Tensor, target: int, output: str) -> torch.Tensor:
    return (logits.float().softmax(-1) if output == "prob" else logits.float())[:, target]


def hf_onehot_forward(net: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, seq: str, target: int = 1,
                      output: str = "logit") -> Forward:
    """``forward(onehot)`` of a sequence classifier with a single-base tokenizer, for one sequence.

    Special tokens (and ``N``) keep their own embeddings; each A/C/G/T position's embedding is
    ``onehot[i] @ E[A, C, G, T]``. The batch holds path points of this one sequence (no padding).
    """
    bases = base_token_ids(tokenizer)
    if bases is None:
        raise GenolmError("the one-hot formulation needs a tokenizer with one token per base")
    ids = torch.tensor(encode_many(tokenizer, [seq.upper()])[0])
    positions = torch.tensor([i for i, t in enumerate(ids.tolist()) if t in bases])
    if len(positions) != sum(ch in BASES for ch in seq.upper()):
        raise GenolmError("tokenization does not map bases to positions one to one")
    table = net.get_input_embeddings()
    dev = table.weight.device
    is_base = torch.from_numpy(one_hot([seq]).sum(-1)[0] > 0)  # N rows are tokens of their own

    def forward(onehot: torch.Tensor) -> torch.Tensor:
        fixed = table(ids.to(dev)).unsqueeze(0).expand(len(onehot), -1, -1)
        known = onehot[:, is_base].to(dev)
        embeds = fixed.index_put((torch.arange(len(onehot), device=dev)[:, None], positions.to(dev)[None]),
                                 known @ table(torch.tensor(bases, device=dev)))
        return _score(net(inputs_embeds=embeds).logits, target, output)

    return forward


def embedding_integrated_gradients(net: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, seq: str,
                                   target: int = 1, output: str = "logit", steps: int = 32
                                   ) -> tuple[np.ndarray, float]:
    """Integrated gradients over input embeddings, spread evenly back to bases.

    Returns:
        ``(per_base, delta)``: contributions ``(len(seq),)`` float32 and captum's convergence delta.

    """
    from captum.attr import IntegratedGradients

    enc = tokenizer(seq.upper(), return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]])
    dev = net.get_input_embeddings().weight.device
    specials = set(tokenizer.all_special_ids)
    is_dna = torch.tensor([[t not in specials for t in enc["input_ids"]]], device=dev)
    with torch.no_grad():
        embeds = net.get_input_embeddings()(ids.to(dev))
    baseline = embeds * (~is_dna).unsqueeze(-1)

    def forward(e: torch.Tensor) -> torch.Tensor:
        return _score(net(inputs_embeds=e).logits, target, output)

    attr, delta = IntegratedGradients(forward).attribute(embeds, baselines=baseline, n_steps=steps,
                                                         return_convergence_delta=True)
    per_token = attr.detach().sum(-1)[0].double().cpu().numpy()
    per_base = np.zeros(len(seq))
    for value, (lo, hi), dna in zip(per_token, enc["offset_mapping"], is_dna[0].tolist(), strict=True):
        if dna and hi > lo:
            per_base[lo:hi] += value / (hi - lo)
    return per_base.astype(np.float32), float(delta.detach().double().sum())


def classifier_integrated_gradients(net: PreTrainedModel, tokenizer: PreTrainedTokenizerFast,
                                    seqs: Sequence[str], target: int = 1, output: str = "logit",
                                    steps: int = 32, progress: bool = True) -> dict[str, np.ndarray]:
    """IG for every sequence: one-hot formulation when the tokenizer is single-base, else embeddings.

    Returns:
        ``{"per_base": (N, L_max), "delta": (N,)}`` and, for the one-hot formulation, ``"actual"``
        and ``"hypothetical"`` ``(N, L_max, 4)``; zero past each sequence's end.

    """
    from transformers.utils import logging as hf_logging

    length = max(len(s) for s in seqs)
    single = base_token_ids(tokenizer) is not None
    out = {"per_base": np.zeros((len(seqs), length), np.float32), "delta": np.zeros(len(seqs))}
    if single:
        out["actual"] = np.zeros((len(seqs), length, 4), np.float32)
        out["hypothetical"] = np.zeros_like(out["actual"])
    net = net.eval()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "will not detect padding tokens in inputs_embeds": none here
    try:
        for row, seq in enumerate(tqdm(seqs, desc="integrated gradients", unit="seq", disable=not progress)):
            if single:
                forward = hf_onehot_forward(net, tokenizer, seq, target, output)
                actual, hyp, delta = onehot_integrated_gradients(forward, one_hot([seq]), steps)
                out["actual"][row, : len(seq)], out["hypothetical"][row, : len(seq)] = actual[0], hyp[0]
                out["per_base"][row, : len(seq)] = actual[0].sum(-1)
                out["delta"][row] = delta[0]
            else:
                per_base, out["delta"][row] = embedding_integrated_gradients(net, tokenizer, seq, target,
                                                                             output, steps)
                out["per_base"][row, : len(seq)] = per_base
    finally:
        hf_logging.set_verbosity(verbosity)
    return out
