"""``genolm-export-hf``: turn a genolm causal-LM ``.ckpt`` into a Hugging Face folder."""

from __future__ import annotations

import argparse
import sys

from genolm.errors import GenolmError
from genolm.export import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    """Export ``CKPT`` to ``OUT`` (safetensors + config + tokenizer)."""
    p = argparse.ArgumentParser(prog="genolm-export-hf", description=__doc__)
    p.add_argument("ckpt", help="genolm .ckpt file")
    p.add_argument("out", help="output folder (must not exist)")
    args = p.parse_args(argv)
    try:
        print(export_checkpoint(args.ckpt, args.out))
    except GenolmError as err:
        print(f"genolm: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
