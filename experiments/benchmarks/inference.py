"""Benchmark worker: batched inference vs a per-sequence loop (the course's way), same model.

- scoring: :func:`genolm.scoring.effects.score_variants` (batches of 128 pairs of similar
  length, shared-prefix pass over the fast Mixtral trunk, head on real tokens only, batches
  side by side on the CPU cores) vs ``bench_baselines.score_pairs_one_by_one`` (one transformers forward
  per sequence), on the course's SNP pairs; once with every score (the head runs for the
  likelihoods) and once with the embedding distances only (the course's own score; both
  sides then skip the head);
- generation: :func:`genolm.generation.sampling.generate_dna` batched with KV cache vs one
  sequence at a time without cache;
- optimization oracle: a finetuned classifier, genolm's oracle on batches of 512 vs
  transformers' forward on one sequence per call.
The LM is Mistral-DNA-v1-1M's trunk with its head re-initialised (same shapes and cost as a
pretrained genolm 1M model). Usage: python experiments/benchmarks/inference.py DATA_DIR DEVICE
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from bench_baselines import generate_without_cache, plain_oracle, score_pairs_one_by_one
from common import emit
from transformers import MixtralForCausalLM

from genolm.checkpoints import load_classifier
from genolm.data.labeled import read_labeled_csv
from genolm.data.tokenizers import pretrained
from genolm.design.oracle import classifier_oracle
from genolm.generation.sampling import generate_dna
from genolm.models.fast.switch import use_fast
from genolm.scoring.effects import score_variants
from genolm.scoring.variants import read_fasta_pairs

TF0 = "models/Mistral-DNA-v1-1M-hg38-finetuned-tf0"


def timed(func, *args, **kwargs) -> float:
    """Seconds one call takes."""
    t0 = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - t0


def scoring(model, tok, data: Path, n_loop: int, n_batched: int, device: str,
            scores: tuple[str, ...]) -> dict[str, float]:
    """Pairs/s of the per-pair loop (first ``n_loop`` exon pairs) and batched (first ``n_batched``).

    Both compute ``scores``. The loop is ~10x slower per pair, so it gets fewer pairs: both then
    run for a few seconds, and the 2-core machine's drift (~20% between seconds) hits both
    alike. Median of 5 alternating rounds.
    """
    pairs = read_fasta_pairs(data / "SNP/SNPexon_ref_201b.fasta.gz", data / "SNP/SNPexon_alt_201b.fasta.gz",
                             "exon", limit=max(n_loop, n_batched))
    ref, alt = pairs["ref"].tolist(), pairs["alt"].tolist()
    likelihood = "llr" in scores
    score_variants(model, tok, ref[:256], alt[:256], scores=scores, device=device, progress=False)  # warm-up
    loops, batched = [], []
    for _ in range(5):
        loops.append(timed(score_pairs_one_by_one, model.to(device), tok, ref[:n_loop], alt[:n_loop],
                           likelihood=likelihood))
        batched.append(timed(score_variants, model, tok, ref[:n_batched], alt[:n_batched], scores=scores,
                             batch_size=128, device=device, progress=False))
    return {"unit": "pairs/s", "loop": n_loop / statistics.median(loops),
            "batched": n_batched / statistics.median(batched)}


def generation(model, tok, n: int, length: int, device: str) -> dict[str, float]:
    """Bases/s sampling ``n`` sequences of ``length`` bases both ways."""
    model.to(device)
    loop = sum(timed(generate_without_cache, model, tok, length, seed=i) for i in range(n))
    batched = timed(generate_dna, model, tok, n, length, seed=0, batch_size=n, device=device, progress=False)
    return {"unit": "bases/s", "loop": n * length / loop, "batched": n * length / batched}


def oracle(data: Path, n: int, device: str) -> dict[str, float]:
    """Sequences/s of the tf0 classifier oracle, one sequence per call vs batches of 512.

    One per call is transformers' forward (the course's way); batches go through genolm's oracle.
    Median of 3 alternating rounds.
    """
    module = load_classifier(data / TF0)
    batched_fn = classifier_oracle(module, device=device)
    one_fn = plain_oracle(module, device=device)
    seqs = (read_labeled_csv(data / "GUE/tf/0/test.csv")["sequence"].tolist() * 4)[: n * 10]
    batched_fn(seqs[:512])  # warm-up of the batch shape
    loops, batched = [], []
    for _ in range(3):
        loops.append(sum(timed(one_fn, [s]) for s in seqs[:n]))
        batched.append(sum(timed(batched_fn, seqs[lo : lo + 512]) for lo in range(0, len(seqs), 512)))
    return {"unit": "sequences/s", "loop": n / statistics.median(loops),
            "batched": len(seqs) / statistics.median(batched)}


def main() -> None:
    """Time the three entrypoints' inner loops and print the RESULT line."""
    data, device = Path(sys.argv[1]), sys.argv[2]
    model = MixtralForCausalLM.from_pretrained(data / TF0).eval()
    use_fast(model, "auto", device)
    tok = pretrained(data / TF0)
    every, embeddings = ("l2", "cosine", "llr"), ("l2", "cosine")
    tasks = {"scoring (l2, cosine, llr)": scoring(model, tok, data, 512, 4096, device, every),
             "scoring (l2, cosine: embeddings only)":
                 scoring(model, tok, data, 512, 4096, device, embeddings),
             "generation": generation(model, tok, 32, 200, device),
             "optimization oracle": oracle(data, 200, device)}
    for row in tasks.values():
        row["ratio"] = row["batched"] / row["loop"]
    emit({"path": "inference", "device": device, "tasks": tasks})


if __name__ == "__main__":
    main()
