"""Profile one training step of both paths with the torch profiler; write the top operators.

Usage: python experiments/benchmarks/profile_hot_path.py MODEL CHUNKS OUT.md [DATA_DIR DEVICE]
Profiles transformers' forward + ``F.cross_entropy`` on a left-padded batch (the course's hot
path) and genolm's fast forward + fused loss on a packed batch of the same tokens, each followed
by fused AdamW, on random tokens shaped like 200-base chunks (42 tokens, padded to 49). With
``DATA_DIR``, also variant scoring with every score on the course's exon SNP pairs: the per-pair
loop and ``score_variants`` (one batch at a time, so every operator lands on this thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_baselines import score_pairs_one_by_one
from common import emit, machine, pretrain_cfg
from omegaconf import OmegaConf
from torch.profiler import ProfilerActivity, profile
from transformers import MixtralForCausalLM

from genolm.data.tokenizers import pretrained
from genolm.models.fast.fused_loss import linear_cross_entropy
from genolm.models.fast.mixtral import mixtral_hidden_states
from genolm.models.fast.switch import use_fast
from genolm.models.mixtral import build_causal_lm, mixtral_config
from genolm.scoring.effects import score_variants
from genolm.scoring.variants import read_fasta_pairs


def course_step(net, ids: torch.Tensor) -> torch.Tensor:
    """The course: transformers' forward, full logits, cross-entropy + router loss."""
    out = net(input_ids=ids, attention_mask=(ids != 3).long(), output_router_logits=True)
    labels = ids.masked_fill(ids == 3, -100)
    return F.cross_entropy(out.logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()) + 0.02 * out.aux_loss


def genolm_step(net, ids: torch.Tensor) -> torch.Tensor:
    """Fast forward over the same weights + fused chunked loss."""
    hidden, aux = mixtral_hidden_states(net, ids[:, :-1])
    nll = linear_cross_entropy(hidden.flatten(0, 1), net.lm_head.weight, ids[:, 1:].flatten())
    return nll / ids[:, 1:].numel() + 0.02 * aux


def top_ops(step, net, ids: torch.Tensor, rows: int = 12) -> str:
    """Two warm-up steps, then two profiled steps; the table of the most expensive operators."""
    opt = torch.optim.AdamW(net.parameters(), lr=5e-4, fused=True)

    def one() -> None:
        step(net, ids).backward()
        opt.step()
        opt.zero_grad()

    for _ in range(2):
        one()
    return profiled(lambda: [one() for _ in range(2)], rows)


def profiled(run, rows: int) -> str:
    """The operator table (most self CPU time first) of one call of ``run``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


def scoring_ops(data: Path, device: str, rows: int = 12) -> list[str]:
    """Markdown sections: operator tables of the per-pair loop (64 pairs) and batched scoring (512)."""
    tf0 = data / "models/Mistral-DNA-v1-1M-hg38-finetuned-tf0"
    net, tok = MixtralForCausalLM.from_pretrained(tf0).eval().to(device), pretrained(tf0)
    use_fast(net, "auto")
    pairs = read_fasta_pairs(data / "SNP/SNPexon_ref_201b.fasta.gz", data / "SNP/SNPexon_alt_201b.fasta.gz",
                             "exon", limit=512)
    ref, alt = pairs["ref"].tolist(), pairs["alt"].tolist()
    runs = {"per-pair loop, 64 pairs (transformers forward per sequence)":
            lambda: score_pairs_one_by_one(net, tok, ref[:64], alt[:64]),
            "score_variants, 512 pairs in batches of 128 (workers=1)":
            lambda: score_variants(net, tok, ref, alt, batch_size=128, device=device, progress=False,
                                   workers=1)}
    text = []
    for title, run in runs.items():
        run()  # warm-up
        text += [f"## Scoring: {title}\n", "```", profiled(run, rows), "```\n"]
    return text


def main() -> None:
    """Profile both paths and write the markdown summary."""
    model, chunks, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    arch = OmegaConf.to_container(pretrain_cfg([f"model={model}", "paths.output_dir=."]).model.arch)
    net = build_causal_lm(mixtral_config(arch, 4096, 3, 1, 2))
    gen = torch.Generator().manual_seed(0)
    padded = torch.randint(5, 4096, (chunks, 49), generator=gen)
    padded[:, :7] = 3  # left padding to the longest chunk, as the course's collator does
    packed = torch.randint(5, 4096, (chunks * 42 // 64, 65), generator=gen)
    text = [f"# Hot-path profile: {model}, {chunks} chunks per step, 2 steps\n",
            f"Machine: {machine()}\n", "## Course hot path (transformers forward, padded)\n",
            "```", top_ops(course_step, net, padded), "```\n",
            "## genolm hot path (fast forward + fused loss, packed)\n",
            "```", top_ops(genolm_step, net, packed), "```\n"]
    if len(sys.argv) > 5:
        text += scoring_ops(Path(sys.argv[4]), sys.argv[5])
    out.write_text("\n".join(text))
    emit({"path": "profile", "out": str(out)})


if __name__ == "__main__":
    main()
