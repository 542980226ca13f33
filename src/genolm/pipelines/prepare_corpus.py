"""``genolm-prepare-corpus``: FASTA/CSV -> chunked train/val corpus (see :mod:`genolm.data.corpus`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from genolm.data.corpus import load_corpus_meta, prepare_corpus
from genolm.errors import GenolmError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="genolm-prepare-corpus",
        description="Tile FASTA (.fa/.fa.gz/BGZF) or CSV (column 'text') files into fixed-length "
                    "upper-case chunks with a deterministic train/val split.")
    p.add_argument("inputs", nargs="+", help="FASTA or CSV files")
    p.add_argument("-o", "--out-root", default=".cache/corpus", help="output root folder")
    p.add_argument("--name", default="corpus", help="prefix of the corpus folder")
    p.add_argument("--chunk-len", type=int, default=200, help="chunk length in bases")
    p.add_argument("--max-n-frac", type=float, default=0.0, help="largest share of N kept")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of chunks for validation")
    p.add_argument("--seed", type=int, default=42, help="split seed")
    p.add_argument("--val-records", nargs="*", default=[], help="records held out whole for val")
    p.add_argument("--weights", nargs="+", type=float, default=None, metavar="W",
                   help="one sampling weight in (0, 1] per input: each chunk of that input is kept "
                        "with this probability (default: 1 for all)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes chunking in parallel (default: this machine's CPUs, up to 8); "
                        "the output is the same for any number")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prepare the corpus and print its folder and counts."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.weights is not None and len(args.weights) != len(args.inputs):
            raise GenolmError(f"--weights: {len(args.weights)} weights for {len(args.inputs)} inputs")
        weights = args.weights or [1.0] * len(args.inputs)
        inputs = [{"path": p, "weight": w} for p, w in zip(args.inputs, weights, strict=True)]
        out = prepare_corpus(inputs, args.out_root, chunk_len=args.chunk_len,
                             max_n_frac=args.max_n_frac, val_fraction=args.val_fraction,
                             seed=args.seed, val_records=args.val_records, name=args.name,
                             workers=args.workers)
    except GenolmError as err:
        print(f"genolm: error: {err}", file=sys.stderr)
        return 1
    print(out)
    print(json.dumps(load_corpus_meta(out)["counts"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
