"""Benchmark worker: peak memory of the data side for the default corpus and a 10x larger one.

Writes the default hg38 inputs ``REPEAT`` times into one FASTA (records renamed), then in this
process: corpus preparation, tokenization into the memory-mapped token cache, and one full epoch
of packed training batches. Reports peak RSS above the RSS before the data work starts (it
includes pages of the memory-mapped token file the epoch touched, which the kernel can drop) and
the growth of anonymous memory (heap) over the whole data work.
Usage: python experiments/benchmarks/data_memory.py DATA_DIR REPEAT WORK_DIR (writes the FASTA in a
child process first, so its memory does not count).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

from Bio import SeqIO
from common import emit, peak_rss_mb

from genolm.data.genome import GenomeChunksDataModule
from genolm.data.tokenizers import pretrained

TOKENIZER = "models/Mistral-DNA-v1-1M-hg38-finetuned-tf0"
INPUTS = ("hg38/chr2_1-2333275.fa.gz", "human_other/hisat2_22_20-21M.fa.gz")


def repeated_fasta(data: Path, repeat: int, out: Path) -> Path:
    """One gzipped FASTA holding every input record ``repeat`` times."""
    with gzip.open(out, "wt", compresslevel=1) as fh:
        for copy in range(repeat):
            for name in INPUTS:
                for rec in SeqIO.parse(gzip.open(data / name, "rt"), "fasta"):
                    fh.write(f">{rec.id}_copy{copy}\n{rec.seq}\n")
    return out


def main() -> None:
    """Prepare, tokenize and iterate; print the RESULT line."""
    data, repeat, work = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    fasta = work / f"hg38_x{repeat}.fa.gz"
    if len(sys.argv) > 4:  # the child: write the FASTA and exit
        work.mkdir(parents=True, exist_ok=True)
        repeated_fasta(data, repeat, fasta)
        return
    subprocess.run([sys.executable, __file__, *sys.argv[1:4], "write"], check=True)
    tok = pretrained(data / TOKENIZER)
    base, anon_base = peak_rss_mb(), resident_mb("RssAnon")
    t0 = time.perf_counter()
    dm = GenomeChunksDataModule([str(fasta)], lambda **_: tok, cache_dir=str(work / f"cache_x{repeat}"),
                                block_size=64, batch_size=164)
    dm.setup()
    prepared, prepare_peak = time.perf_counter() - t0, peak_rss_mb() - base
    tokens = sum(int(b["input_ids"].numel()) for b in dm.train_dataloader())
    emit({"path": "data", "repeat": repeat, "fasta_mb": round(fasta.stat().st_size / 2**20, 1),
          "train_chunks": dm.summary()["train_chunks"], "epoch_tokens": tokens,
          "prepare_s": round(prepared, 1), "epoch_s": round(time.perf_counter() - t0 - prepared, 1),
          "rss_before_data_mb": round(base, 1), "prepare_peak_mb": round(prepare_peak, 1),
          "data_peak_mb": round(peak_rss_mb() - base, 1),
          "anon_after_epoch_mb": round(resident_mb("RssAnon") - anon_base, 1)})


def resident_mb(field: str) -> float:
    """``RssAnon`` (heap, not reclaimable) or ``RssFile`` (mapped file pages) of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
