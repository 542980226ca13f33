"""Helpers the tests import explicitly: data paths, tiny models and configs, FASTA writer, CLI runner.

Nothing here needs the data mirror at import time: the paths are only names until a test opens them.
Tests under ``tests/unit`` use the model builders and writers; the data paths and
:func:`tiny_overrides` are for ``tests/integration``, whose conftest checks :data:`REQUIRED_DATA`.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DATA = Path(os.environ.get("GENOLM_DATA_DIR", REPO / "data")).resolve()
CHR2 = DATA / "hg38" / "chr2_1-2333275.fa.gz"
CHR22 = DATA / "human_other" / "hisat2_22_20-21M.fa.gz"
MISTRAL_TF0 = Path(os.environ.get("GENOLM_MODELS_DIR", DATA / "models")) / \
    "Mistral-DNA-v1-1M-hg38-finetuned-tf0"
# what tests/integration checks before running anything (`make data` links them)
REQUIRED_DATA = (CHR2, CHR22, MISTRAL_TF0)

# a tiny Mixtral causal LM: fast, untrained, good enough to test inference code paths
TINY_LM_ARCH = dict(hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=1,
                    max_position_embeddings=256, output_router_logits=False)


def tiny_overrides(out: Path, cache: Path) -> list[str]:
    """Overrides that make pretraining take seconds on real chr22 data."""
    return [f"paths.output_dir={out}", f"paths.cache_dir={cache}", f"paths.data_dir={DATA}",
            f"paths.log_dir={out}/logs", f"data.inputs=[{CHR22}]", "data.block_size=64",
            "data.batch_size=16", "data.eval_batch_size=64", "model=tiny", "tokenizer=char",
            "trainer.max_epochs=-1", "trainer.enable_progress_bar=false",
            "trainer.num_sanity_val_steps=0", "trainer.limit_val_batches=4",
            "trainer.log_every_n_steps=1", "logger=csv"]


def tiny_lm(tok):
    """``(net, tok)``: a seeded :data:`TINY_LM_ARCH` causal LM over ``tok``'s vocabulary, in eval mode."""
    from genolm.modules.causal_lm import CausalLMModule

    torch.manual_seed(0)
    module = CausalLMModule(TINY_LM_ARCH, len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    return module.net.eval(), tok


def tiny_mixtral(cls, seed: int = 0):
    """A random single-expert Mixtral over the single-base tokenizer (weights large enough to matter)."""
    from transformers import MixtralConfig

    from genolm.data.tokenizers import char

    tok = char()
    config = MixtralConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=16, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=2, num_local_experts=1,
                           num_experts_per_tok=1, max_position_embeddings=128, initializer_range=0.3,
                           pad_token_id=tok.pad_token_id, num_labels=2)
    torch.manual_seed(seed)
    return cls(config).eval(), tok


def dimer_tokenizer():
    """A word-level tokenizer of the 16 two-base tokens (not single-base: no complement table)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    from genolm.data.tokenizers import SPECIAL_TOKENS, wrap_tokenizer

    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + [a + b for a in "ACGT" for b in "ACGT"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(".."), behavior="isolated")
    return wrap_tokenizer(tok)


def compose_cfg(config: str, overrides: list[str], hydra: bool = False):
    """Compose ``conf/<config>.yaml`` with the real Hydra machinery."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config, overrides=overrides, return_hydra_config=hydra)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """Run a console script from this environment's bin folder."""
    exe = Path(sys.executable).parent / args[0]
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([str(exe), *args[1:]], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=600)


def write_fasta(path: Path, records: dict[str, str], compress: str | None = None) -> Path:
    """Write records as FASTA (60 columns), plain, gzip or BGZF."""
    text = "".join(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
                   for name, seq in records.items())
    if compress == "gzip":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    elif compress == "bgzf":
        from Bio import bgzf

        with bgzf.BgzfWriter(str(path), "wb") as handle:
            handle.write(text.encode())
    else:
        path.write_text(text)
    return path
