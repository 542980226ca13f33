"""Writing models out and reading what their pretraining run recorded.

* :func:`export_hf` writes a model and its tokenizer as a Hugging Face folder (atomically);
  :func:`export_checkpoint` does it for a genolm causal-LM ``.ckpt``.
* :func:`training_record` reads the data summary a genolm pretraining run wrote beside a model.

Loading stays in :mod:`genolm.checkpoints`, the one loader.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from genolm.checkpoints import load_causal_lm
from genolm.errors import GenolmError
from genolm.io import atomic_dir


def export_hf(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: str | Path,
              replace: bool = False) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face folder (safetensors), atomically.

    The folder loads with ``AutoModelForCausalLM.from_pretrained(out_dir)`` and
    ``AutoTokenizer.from_pretrained(out_dir)`` without network access.

    Args:
        model: the model to write.
        tokenizer: its tokenizer.
        out_dir: the folder to create.
        replace: swap an existing ``out_dir`` for the new export (a run continued in its own
            folder); otherwise an existing folder is an error.

    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not replace:
        raise GenolmError(f"{out_dir}: already exists; remove it or choose another folder")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.rename(out_dir, old)  # the new export takes its place below; the old one goes after
    try:
        with atomic_dir(out_dir) as tmp, torch.no_grad():
            model.save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
    except BaseException:
        if old.exists() and not out_dir.exists():
            os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Export a genolm causal-LM ``.ckpt`` to a Hugging Face folder."""
    model, tok = load_causal_lm(ckpt_path)
    return export_hf(model, tok, out_dir)


def training_record(model_path: str | Path) -> dict[str, Any] | None:
    """The ``data`` summary a genolm pretraining run wrote beside this model, if any.

    A run folder holds ``metrics.json`` (with the datamodule's summary: corpus folder, packing)
    next to ``hf/`` and one level above ``checkpoints/*.ckpt``; any other model has no record.
    """
    path = Path(model_path)
    for run in (path.parent, path.parent.parent):
        meta = run / "metrics.json"
        if meta.is_file():
            data = json.loads(meta.read_text()).get("data")
            if isinstance(data, dict) and data.get("corpus_dir"):
                return data
    return None
