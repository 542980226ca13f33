"""Shared pieces of the benchmark workers: data, model config, clocks, machine facts.

Every worker runs in its own process (so peak RSS belongs to one measurement) and prints one
JSON line starting with ``RESULT``; ``run.py`` collects them.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
# H100/H200 dense bf16 peak, for MFU
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}


def pretrain_cfg(overrides: list[str]):
    """Compose ``conf/pretrain.yaml`` exactly as ``genolm-pretrain`` would, plus overrides."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("pretrain", overrides=overrides)


def prepared_data(cfg):
    """The config's datamodule with corpus, tokenizer and token cache prepared (cached on disk)."""
    data = instantiate(cfg.data, tokenizer=instantiate(cfg.tokenizer))
    data.prepare()
    return data


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock times are real."""
    if device == "cuda":
        torch.cuda.synchronize()


class Clock:
    """Wall time and non-pad tokens per optimizer step; rates over the steps after ``warmup``."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device = warmup, device
        self.stamps: list[float] = []
        self.tokens: list[int] = []

    def step_done(self, tokens: int) -> None:
        """Record the end of one optimizer step that consumed ``tokens`` non-pad tokens."""
        sync(self.device)
        self.stamps.append(time.perf_counter())
        self.tokens.append(tokens)

    def summary(self) -> dict[str, float]:
        """Non-pad tokens per second and seconds per step over the timed steps."""
        if len(self.stamps) <= self.warmup + 1:
            raise RuntimeError(f"only {len(self.stamps)} steps recorded; need more than warmup + 1")
        seconds = self.stamps[-1] - self.stamps[self.warmup]
        tokens = sum(self.tokens[self.warmup + 1 :])
        steps = len(self.stamps) - 1 - self.warmup
        return {"tokens_per_s": tokens / seconds, "s_per_step": seconds / steps, "timed_steps": steps,
                "tokens_per_step": tokens / steps}


def flops_per_token(arch: dict[str, Any], vocab: int, seq_len: float) -> float:
    """Training FLOPs per token: 6 x active matmul parameters + causal attention scores."""
    h, inter, layers = arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]
    kv = arch["num_key_value_heads"] * h // arch["num_attention_heads"]
    active = layers * (2 * h * h + 2 * h * kv + 3 * h * inter * arch["num_experts_per_tok"]) + h * vocab
    return 6 * active + 6 * layers * h * seq_len


def machine() -> dict[str, Any]:
    """Where and with what the numbers were measured."""
    import lightning
    import transformers

    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "lightning": lightning.__version__, "python": platform.python_version()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def emit(result: dict[str, Any]) -> None:
    """Print the worker's result line for ``run.py``."""
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print("RESULT " + json.dumps(result), flush=True)
