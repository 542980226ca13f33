"""The one place that loads models: genolm checkpoints and Hugging Face folders, checked and safe.

* :func:`safe_load` reads every user-given ``.ckpt`` with ``torch.load(weights_only=True)``: a
  checkpoint holding anything but tensors and plain Python data (a crafted pickle that would run
  code) is refused with one :class:`~genolm.errors.GenolmError` naming the file. genolm's own
  checkpoints hold plain data only (:meth:`genolm.modules.base.GenolmModule.on_save_checkpoint`
  turns hyper-parameters into :func:`plain_data`), so no type needs allow-listing.
* :func:`load_causal_lm`, :func:`load_masked_lm` and :func:`load_classifier` check the kind a
  model declares (a ``.ckpt``'s ``genolm.kind``, an HF folder's ``config.json`` ``architectures``:
  ``*ForCausalLM``, ``*ForMaskedLM`` such as BERT, ESM, DNABERT-2 or the Nucleotide Transformer,
  ``*ForSequenceClassification``) and refuse the wrong kind; :func:`classifier_from_pretrained`
  builds a classifier on the backbone of any causal LM, masked LM or classifier (the finetuning
  starting point).
* ``model_path`` may be a Hub id (:func:`genolm.hub.resolve_model_path`); ``trust_remote_code``
  reaches ``from_pretrained`` only when set (:func:`genolm.hub.remote_code_kwargs`).
* Writing Hugging Face folders (``export_hf``) and reading a run's training record live in
  :mod:`genolm.export`.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from genolm.data.tokenizers import tokenizer_from_state
from genolm.errors import GenolmError
from genolm.hub import check_remote_code, remote_code_kwargs, resolve_model_path
from genolm.io import model_source
from genolm.models.classifier import config_from_dict, head_modules, reset_head
from genolm.models.fast.switch import use_fast

KIND_NAMES = {"causal_lm": "causal LM", "masked_lm": "masked LM", "classifier": "sequence classifier"}
_HF_SUFFIXES = {"causal_lm": ("ForCausalLM", "LMHeadModel"), "masked_lm": ("ForMaskedLM",),
                "classifier": ("ForSequenceClassification",)}


def _first_line(err: BaseException) -> str:
    """The informative first line of an exception message."""
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL \S+", text) or re.search(r"Unpickler error: .*", text)
    line = found.group(0) if found else next((s for s in text.splitlines() if s.strip()), type(err).__name__)
    return line.strip()[:300]


def safe_load(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint file weights-only (tensors and plain Python data; never runs code).

    Args:
        path: a ``.ckpt`` file (Lightning checkpoint).
        map_location: ``torch.load``'s ``map_location``.
        mmap: memory-map the tensors (cheap look at a large file's metadata).

    Raises:
        GenolmError: missing file, unreadable file, or a pickle that needs more than plain data.

    """
    path = Path(path)
    if not path.is_file():
        raise GenolmError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise GenolmError(f"{path}: refused: the checkpoint holds objects other than tensors and plain "
                          f"data, which could run code ({_first_line(err)})") from err
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input
        raise GenolmError(f"{path}: cannot be read as a checkpoint ({_first_line(err)})") from err
    if not isinstance(ckpt, dict):
        raise GenolmError(f"{path}: not a Lightning checkpoint (holds a {type(ckpt).__name__})")
    return ckpt


def plain_data(obj: Any) -> Any:
    """``obj`` with OmegaConf containers, tuples, paths and numpy values made plain Python data."""
    from omegaconf import Container, OmegaConf

    if isinstance(obj, Container):
        obj = OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, dict):
        return {plain_data(k): plain_data(v) for k, v in obj.items()}
    if isinstance(obj, tuple):  # namedtuples too: their class would need allow-listing
        return tuple(plain_data(v) for v in obj)
    if isinstance(obj, list):
        return [plain_data(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    return obj


def hf_config(path: Path) -> dict[str, Any]:
    """A Hugging Face folder's ``config.json`` as a dict."""
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise GenolmError(f"{path / 'config.json'}: cannot be read ({_first_line(err)})") from err


def hf_kind(path: Path) -> str | None:
    """``causal_lm``, ``masked_lm`` or ``classifier`` as ``config.json`` declares it, else ``None``."""
    arch = hf_config(path).get("architectures") or []
    return next((kind for kind, ends in _HF_SUFFIXES.items() if any(a.endswith(ends) for a in arch)), None)


def declared_kind(path: Path) -> str | None:
    """The kind ``path`` declares (a ``.ckpt``'s ``genolm.kind``, a HF folder's architectures), or None."""
    if model_source(path) == "ckpt":
        return safe_load(path, mmap=True).get("genolm", {}).get("kind")
    return hf_kind(path)


def check_kind(path: str | Path, kind: str) -> str:
    """Raise unless ``path`` (a genolm ``.ckpt`` or HF folder) declares a model of ``kind``.

    Returns:
        ``"ckpt"`` or ``"hf"`` (see :func:`genolm.io.model_source`).

    """
    path, want = resolve_model_path(path), KIND_NAMES[kind]
    source, declared = model_source(path), declared_kind(path)
    if source == "ckpt":
        if declared is None:
            raise GenolmError(f"{path}: not a genolm checkpoint (no 'genolm' section); a {want} is needed")
        if declared != kind:
            raise GenolmError(f"{path}: a {KIND_NAMES.get(declared, declared)} checkpoint, not a {want}")
        return source
    if declared != kind:
        what = f"a {KIND_NAMES[declared]}" if declared else "no known model head"
        raise GenolmError(f"{path}: declares {what} (config.json architectures: "
                          f"{hf_config(path).get('architectures')}), not a {want}")
    return source


def _module_class(kind: str):
    if kind == "causal_lm":
        from genolm.modules.causal_lm import CausalLMModule

        return CausalLMModule
    from genolm.modules.classifier import SequenceClassifierModule

    return SequenceClassifierModule


def load_module(path: str | Path, kind: str, map_location: str = "cpu"):
    """Rebuild a genolm LightningModule of ``kind`` (with tokenizer) from a checked ``.ckpt``."""
    path = Path(path)
    if check_kind(path, kind) != "ckpt":
        raise GenolmError(f"{path}: a Hugging Face folder, not a genolm .ckpt file")
    try:
        return _module_class(kind).load_from_checkpoint(str(path), map_location=map_location,
                                                        weights_only=True)
    except (KeyError, RuntimeError, TypeError, pickle.UnpicklingError) as err:
        raise GenolmError(f"{path}: not a loadable genolm {KIND_NAMES[kind]} checkpoint "
                          f"({_first_line(err)})") from err


def load_causal_lm_module(ckpt_path: str | Path, map_location: str = "cpu"):
    """Rebuild a :class:`~genolm.modules.causal_lm.CausalLMModule` (with tokenizer) from a ``.ckpt``."""
    return load_module(ckpt_path, "causal_lm", map_location)


def _from_folder(loader: Any, path: Path, trust_remote_code: bool = False, **kwargs: Any
                 ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """``(model, tokenizer)`` of a local HF folder; any load failure is one GenolmError line."""
    check_remote_code(path, hf_config(path), trust_remote_code)
    remote = remote_code_kwargs(trust_remote_code)
    try:
        return (loader.from_pretrained(str(path), local_files_only=True, **remote, **kwargs),
                AutoTokenizer.from_pretrained(str(path), local_files_only=True, **remote))
    except (OSError, ValueError, KeyError, ImportError) as err:
        hint = "" if trust_remote_code else "; if the model ships its own code, set trust_remote_code=true"
        raise GenolmError(f"{path}: cannot load the model ({_first_line(err)}){hint}") from err


def load_causal_lm(path: str | Path, trust_remote_code: bool = False
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Return ``(model, tokenizer)`` from a genolm causal-LM ``.ckpt``, HF causal-LM folder or Hub id."""
    path = resolve_model_path(path)
    if check_kind(path, "causal_lm") == "ckpt":
        module = load_causal_lm_module(path)
        if module.tokenizer is None:
            raise GenolmError(f"{path}: checkpoint holds no tokenizer")
        return module.net.eval(), module.tokenizer
    model, tok = _from_folder(AutoModelForCausalLM, path, trust_remote_code)
    use_fast(model, "auto")
    return model.eval(), tok


def load_masked_lm(path: str | Path, trust_remote_code: bool = False
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Return ``(model, tokenizer)`` of a HF masked-LM folder or Hub id (``*ForMaskedLM``), eval mode.

    Raises:
        GenolmError: the folder declares another kind, cannot be loaded, or its tokenizer has
            no mask token.

    """
    path = resolve_model_path(path)
    if check_kind(path, "masked_lm") == "ckpt":  # genolm trains causal LMs only
        raise GenolmError(f"{path}: a genolm checkpoint, not a Hugging Face masked-LM folder")
    model, tok = _from_folder(AutoModelForMaskedLM, path, trust_remote_code)
    if tok.mask_token_id is None or tok.pad_token_id is None:
        raise GenolmError(f"{path}: the tokenizer has no mask or pad token; a masked LM needs both")
    return model.eval(), tok


def lm_kind(path: str | Path) -> str:
    """``causal_lm`` or ``masked_lm``: the language-model kind ``path`` declares (genolm .ckpt: causal).

    Raises:
        GenolmError: ``path`` holds no language model (a classifier, an unknown architecture).

    """
    path = resolve_model_path(path)
    if model_source(path) == "hf" and hf_kind(path) == "masked_lm":
        return "masked_lm"
    try:
        check_kind(path, "causal_lm")
    except GenolmError as err:
        raise GenolmError(f"{err} or a masked LM") from None
    return "causal_lm"


def load_any(path: str | Path, trust_remote_code: bool = False
             ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, str]:
    """``(network, tokenizer, kind)`` of any model genolm loads: a classifier, causal or masked LM.

    The kind is what the file declares (a ``.ckpt``'s ``genolm.kind``, a folder's architectures);
    a classifier's network includes its head (its backbone is ``network.base_model``).
    """
    path = resolve_model_path(path)
    kind = declared_kind(path)
    if kind == "classifier":
        module = load_classifier(path, trust_remote_code=trust_remote_code)
        return module.net, module.tokenizer, kind
    if kind == "masked_lm":
        return (*load_masked_lm(path, trust_remote_code), kind)
    return (*load_causal_lm(path, trust_remote_code), "causal_lm")


def load_classifier(path: str | Path, num_labels: int | None = None, trust_remote_code: bool = False):
    """A trained :class:`~genolm.modules.classifier.SequenceClassifierModule`.

    Args:
        path: a genolm finetuning ``.ckpt`` or a Hugging Face sequence-classification folder
            (or Hub id).
        num_labels: when given, the number of classes the classifier must have.
        trust_remote_code: let a folder's own model code run (only used for HF folders).

    """
    path = resolve_model_path(path)
    if check_kind(path, "classifier") == "ckpt":
        module = load_module(path, "classifier")
    else:
        labels = len(hf_config(path).get("id2label") or {}) or 2  # transformers' default
        try:
            module = _module_class("classifier")(init_from=str(path), num_labels=labels,
                                                 trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise GenolmError(f"{path}: cannot load the classifier ({_first_line(err)})") from err
    if num_labels is not None and module.hparams.num_labels != num_labels:
        raise GenolmError(f"{path}: classifier has {module.hparams.num_labels} classes, "
                          f"the task {num_labels}")
    return module


def read_genolm_checkpoint(path: Path) -> dict[str, Any]:
    """Load a genolm Lightning ``.ckpt`` (weights-only, on CPU) and check its ``genolm`` section."""
    ckpt = safe_load(path)
    if "genolm" not in ckpt:
        raise GenolmError(f"{path}: not a genolm checkpoint (no 'genolm' section)")
    return ckpt


def _from_causal_ckpt(path: Path, num_labels: int) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Classifier whose backbone comes from a genolm pretraining checkpoint (new head)."""
    ckpt = read_genolm_checkpoint(path)
    if ckpt["genolm"].get("kind", "causal_lm") != "causal_lm":
        raise GenolmError(f"{path}: a {ckpt['genolm']['kind']} checkpoint, not a pretrained LM")
    config = config_from_dict(ckpt["genolm"]["hf_config"])
    config.num_labels = num_labels
    model = AutoModelForSequenceClassification.from_config(config)
    backbone = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
                if k.startswith("net.model.")}
    missing, _ = model.load_state_dict(backbone, strict=False)
    heads = tuple(f"{h}." for h in head_modules(model))
    if [k for k in missing if not k.startswith(heads)]:
        raise GenolmError(f"{path}: backbone weights missing for {missing[:3]}...")
    return model, ckpt["genolm"]["tokenizer"]


def classifier_from_pretrained(path: str | Path, num_labels: int, new_head: bool = False,
                               trust_remote_code: bool = False
                               ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build a sequence classifier and its tokenizer from a pretrained model.

    Args:
        path: a genolm pretraining ``.ckpt``, a genolm ``hf/`` export, or any Hugging Face
            folder or Hub id of a causal LM, masked LM (BERT, ESM, DNABERT-2, ...) or classifier.
            The backbone is kept; the head (``AutoModelForSequenceClassification``'s, e.g. a
            linear layer on the pooled or last-token state) is new unless the folder already
            holds a classifier with ``num_labels`` classes.
        num_labels: number of classes.
        new_head: re-initialise the classification head even when the folder's head fits.
        trust_remote_code: let a folder's own model code run (HF folders only).

    """
    path = resolve_model_path(path)
    if model_source(path) == "ckpt":
        model, tok_state = _from_causal_ckpt(path, num_labels)
        tok = tokenizer_from_state(tok_state)
    else:
        if hf_kind(path) is None:
            raise GenolmError(f"{path}: unknown architecture {hf_config(path).get('architectures')}; "
                              f"genolm finetunes causal LMs, masked LMs and sequence classifiers")
        model, tok = _from_folder(AutoModelForSequenceClassification, path, trust_remote_code,
                                  num_labels=num_labels, ignore_mismatched_sizes=True)
    if tok.pad_token_id is None:
        raise GenolmError(f"{path}: the tokenizer has no pad token")
    if new_head:
        reset_head(model)
    model.config.pad_token_id = tok.pad_token_id
    if hasattr(model.config, "output_router_logits"):
        model.config.output_router_logits = False
    use_fast(model, "auto")
    return model, tok
