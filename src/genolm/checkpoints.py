"""Load genolm checkpoints or Hugging Face folders, and export checkpoints to HF folders."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from genolm.errors import GenolmError
from genolm.io import atomic_dir, model_source


def load_causal_lm_module(ckpt_path: str | Path, map_location: str = "cpu"):
    """Rebuild a :class:`~genolm.modules.causal_lm.CausalLMModule` (with tokenizer) from a ``.ckpt``."""
    from genolm.modules.causal_lm import CausalLMModule

    path = Path(ckpt_path)
    if not path.is_file():
        raise GenolmError(f"{path}: checkpoint not found")
    try:
        return CausalLMModule.load_from_checkpoint(str(path), map_location=map_location)
    except (KeyError, RuntimeError, TypeError) as err:
        raise GenolmError(f"{path}: not a genolm causal-LM checkpoint ({err})") from err


def load_causal_lm(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Return ``(model, tokenizer)`` from a genolm ``.ckpt`` or any HF causal-LM folder, offline."""
    path = Path(path)
    if model_source(path) == "ckpt":
        module = load_causal_lm_module(path)
        if module.tokenizer is None:
            raise GenolmError(f"{path}: checkpoint holds no tokenizer")
        return module.net.eval(), module.tokenizer
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model.eval(), tok


def export_hf(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face folder (safetensors), atomically.

    The folder loads with ``AutoModelForCausalLM.from_pretrained(out_dir)`` and
    ``AutoTokenizer.from_pretrained(out_dir)`` without network access.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise GenolmError(f"{out_dir}: already exists; remove it or choose another folder")
    with atomic_dir(out_dir) as tmp, torch.no_grad():
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    return out_dir


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Export a genolm causal-LM ``.ckpt`` to a Hugging Face folder."""
    model, tok = load_causal_lm(ckpt_path)
    return export_hf(model, tok, out_dir)
