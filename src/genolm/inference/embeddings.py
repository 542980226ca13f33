"""Per-sequence embeddings of any Hugging Face model: one hidden layer pooled over real tokens.

:func:`embed` runs a ``PreTrainedModel`` whose backbone returns ``hidden_states`` (a genolm causal
LM, a sequence classifier's backbone, a BERT/ESM masked LM or any ``AutoModel``) over DNA
sequences, sorted by length so batches hold little padding, and returns one vector per sequence
in the input order. No Lightning, no Hydra: ``genolm-embed`` (:mod:`genolm.pipelines.embed`) adds
input files, caching and the probe around it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.errors import GenolmError
from genolm.inference.batches import max_positions, pad_batch, pool, resolve_device, token_rows
from genolm.models.fast.mixtral import mixtral_trunk
from genolm.models.fast.switch import lean_trunk

# mean / max: over real (non-pad) tokens, special tokens included; last: the last real token;
# cls: the first token (a BERT-style [CLS], or the first base or BOS of a causal LM)
EMBED_POOLINGS = ("mean", "max", "last", "cls")


def hidden_state_count(model: PreTrainedModel) -> int:
    """Entries of ``hidden_states``: the embedding output plus one per layer."""
    return int(model.config.num_hidden_layers) + 1


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``(N, T, D)`` token vectors of a right-padded batch into ``(N, D)`` (:data:`EMBED_POOLINGS`)."""
    if pooling == "cls":
        return hidden[:, 0]
    return pool(hidden, hidden, mask, pooling)


def check_request(model: PreTrainedModel, layer: int, pooling: str) -> None:
    """Raise a :class:`GenolmError` for an unknown pooling or a layer the model does not have."""
    if pooling not in EMBED_POOLINGS:
        raise GenolmError(f"pooling={pooling!r}: not one of {list(EMBED_POOLINGS)}")
    count = hidden_state_count(model)
    if not -count <= layer < count:
        raise GenolmError(f"layer={layer}: the model has {count} hidden states (0 = embeddings, "
                          f"{count - 1} or -1 = last layer)")


@torch.no_grad()
def embed(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, seqs: Sequence[str], layer: int = -1,
          pooling: str = "mean", batch_size: int = 256, device: str | torch.device | None = None,
          names: Sequence[str] | None = None) -> np.ndarray:
    """One pooled hidden layer per sequence.

    The model's backbone (``model.base_model``: no LM or classification head is run) is called with
    ``output_hidden_states=True`` on right-padded batches of sequences of similar token length;
    ``hidden_states[layer]`` is pooled over each sequence's real tokens. The last layer of a plain
    Mixtral with genolm's kernels switched on (:func:`genolm.models.fast.switch.lean_trunk`) comes
    from :func:`genolm.models.fast.mixtral.mixtral_trunk` instead (the same numbers, faster).

    Args:
        model: a transformers model (or a LoRA-wrapped one) whose backbone returns ``hidden_states``.
        tokenizer: its fast tokenizer; sequences are upper-cased and get its special tokens.
        seqs: DNA sequences.
        layer: index into ``hidden_states`` (0: token embeddings, -1: the last layer, after the
            final norm where the model has one).
        pooling: one of :data:`EMBED_POOLINGS`.
        batch_size: sequences per forward pass.
        device: where to run (``auto``: CUDA when available); ``None`` keeps the model where it is.
        names: record names for error messages.

    Returns:
        ``float32`` array ``(len(seqs), hidden size)``, row ``i`` for ``seqs[i]``.

    Raises:
        GenolmError: no sequences, an unknown pooling, a layer out of range, or a sequence longer
            than the model's positions (named).

    """
    if len(seqs) == 0:
        raise GenolmError("no sequences to embed")
    check_request(model, layer, pooling)
    rows = token_rows(tokenizer, seqs, max_positions(model), names)
    if device is not None:
        model.to(resolve_device(str(device)))
    where = next(model.parameters()).device
    backbone = getattr(model, "base_model", model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # no key/value cache for one pass, where the backbone takes the flag (BERT-style models need not)
    extra = {"use_cache": False} if "use_cache" in inspect.signature(backbone.forward).parameters else {}
    # the last layer of a plain Mixtral with genolm's kernels on: the lean trunk (same numbers, ~1.4x)
    lean = lean_trunk(model) and layer % hidden_state_count(model) == hidden_state_count(model) - 1
    was_training = model.training
    model.eval()
    order = np.argsort([len(r) for r in rows], kind="stable")
    out = None
    try:
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            ids, mask = pad_batch([rows[i] for i in idx], pad_id)
            ids, mask = ids.to(where), mask.to(where)
            if lean:
                hidden = mixtral_trunk(model, ids, mask)[0]
            else:
                hidden = backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                                  **extra).hidden_states[layer]
            vectors = pool_tokens(hidden.float(), mask, pooling).cpu().numpy()
            if out is None:
                out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
    finally:
        model.train(was_training)
    return out
