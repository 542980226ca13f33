"""Shared fixtures: real data from the configured data root, Hydra composition, tiny configs."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DATA = Path(os.environ.get("GENOLM_DATA_DIR", REPO / "data")).resolve()
CHR2 = DATA / "hg38" / "chr2_1-2333275.fa.gz"
CHR22 = DATA / "human_other" / "hisat2_22_20-21M.fa.gz"
MISTRAL_TF0 = Path(os.environ.get("GENOLM_MODELS_DIR", DATA / "models")) / \
    "Mistral-DNA-v1-1M-hg38-finetuned-tf0"

# a tiny Mixtral causal LM: fast, untrained, good enough to test inference code paths
TINY_LM_ARCH = dict(hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=1,
                    max_position_embeddings=256, output_router_logits=False)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail loudly (not skip) when the real data is missing: run `make data` first."""
    for path in (CHR2, CHR22, MISTRAL_TF0):
        if not path.exists():
            raise pytest.UsageError(f"{path} missing: run `make data` (DATA_MIRROR=...) first")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One genolm cache for the session, so corpora and tokenizers are built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def one_thread():
    """One intra-op thread, like each DDP rank: in-process runs stay fast on a shared 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def compose_cfg(config: str, overrides: list[str], hydra: bool = False):
    """Compose ``conf/<config>.yaml`` with the real Hydra machinery."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config, overrides=overrides, return_hydra_config=hydra)


@pytest.fixture
def tiny_cfg(tmp_path: Path, cache_dir: Path):
    """Factory: composed pretrain config for a tiny real-data run, plus extra overrides."""

    def make(*extra: str):
        return compose_cfg("pretrain", tiny_overrides(tmp_path / "run", cache_dir) + list(extra))

    return make


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
