"""``genolm-eval-lm``: bits/base of a causal LM on FASTA windows, beside Markov chains."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from genolm.baselines.compare import lm_vs_markov, write_report
from genolm.checkpoints import load_causal_lm
from genolm.config_schema import EvalLMConfig
from genolm.data.corpus import chunk_record
from genolm.data.sequences import check_dna, iter_records
from genolm.errors import GenolmError
from genolm.export import training_record
from genolm.inference.lm_bits import start_from_record
from genolm.io import write_json_atomic, write_tsv_atomic
from genolm.models.fast.switch import use_fast
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.pipelines.eval_lm")


def tile_fasta(paths: Iterable[str | Path], window: int, skip_n: bool = True
               ) -> tuple[list[str], list[str], int]:
    """Non-overlapping ``window``-base windows of every record: ``(ids, windows, skipped)``.

    Windows holding anything but A/C/G/T (after upper-casing) are skipped and counted when
    ``skip_n``; a shorter tail is dropped.
    """
    if window < 1:
        raise GenolmError(f"window must be >= 1, got {window}")
    ids, windows, skipped = [], [], 0
    for path in paths:
        for record, raw in iter_records(path):
            check_dna(raw, path, record)
            kept, dropped = chunk_record(raw.upper(), window, 0.0 if skip_n else 1.0)
            skipped += dropped
            ids += [f"{record}:{start}-{start + window}" for start, _ in kept]
            windows += [piece for _, piece in kept]
    return ids, windows, skipped


def _sample(ids: list[str], windows: list[str], limit: int | None, seed: int
            ) -> tuple[list[str], list[str]]:
    if limit is None or len(windows) <= limit:
        return ids, windows
    keep = np.sort(np.random.default_rng(seed).choice(len(windows), size=limit, replace=False))
    return [ids[i] for i in keep], [windows[i] for i in keep]


def _baseline_windows(cfg: DictConfig, record: dict[str, Any] | None) -> tuple[Sequence[str], str]:
    if cfg.baseline.fasta:
        paths = list(cfg.baseline.fasta)
        return tile_fasta(paths, cfg.window, skip_n=False)[1], ", ".join(map(str, paths))
    if record is None:
        raise GenolmError(f"{cfg.model_path}: no genolm run folder records its training corpus; "
                          "name the FASTA to fit the Markov chains on with baseline.fasta=[...]")
    train = Path(record["corpus_dir"]) / "train.txt"
    if not train.is_file():
        raise GenolmError(f"{train}: the model's training corpus is gone; set baseline.fasta=[...]")
    return train.read_text().split(), str(train)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Score the windows with the LM and the chains; write the table, report and metrics.

    Returns:
        :func:`genolm.baselines.compare.lm_vs_markov`'s result plus ``skipped`` and ``start``.

    """
    paths = [cfg.fasta] if isinstance(cfg.fasta, str) else list(cfg.fasta)
    if not paths:
        raise GenolmError("fasta=[] names no file to score")
    record = training_record(cfg.model_path)
    start = start_from_record(cfg.start, record)
    model, tok = load_causal_lm(cfg.model_path, cfg.get("trust_remote_code", False))
    use_fast(model, cfg.fast)
    ids, windows, skipped = tile_fasta(paths, cfg.window)
    if not windows:
        raise GenolmError(f"{', '.join(map(str, paths))}: no window of {cfg.window} bases without N")
    ids, windows = _sample(ids, windows, cfg.max_windows, cfg.seed)
    train, train_source = _baseline_windows(cfg, record)
    log.info("scoring %d windows of %d b (%d with N skipped); chains fitted on %s",
             len(windows), cfg.window, skipped, train_source)
    result = lm_vs_markov(model, tok, train, windows, cfg.baseline.max_order, cfg.baseline.alpha,
                          start=start, batch_size=cfg.batch_size)
    out = Path(cfg.paths.output_dir)
    table = result.pop("table").assign(id=ids)
    write_tsv_atomic(table, out / "windows.tsv")
    write_report(out, result, f"{cfg.model_path}: LM vs Markov chains",
                 f"Windows of {cfg.window} b from {', '.join(map(str, paths))}, each scored alone "
                 f"(start token: {start}); chains fitted on {train_source}.")
    result.update(skipped=skipped, start=start)
    write_json_atomic(out / "metrics.json", result)
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval_lm")
@report_errors(EvalLMConfig)
def main(cfg: DictConfig) -> None:
    """Print the LM's bits/base beside every Markov order."""
    res = run(cfg)
    print(f"{res['windows']:,} windows ({res['bases']:,} bases; {res['skipped']:,} with N skipped)")
    print(f"LM: {res['lm_bits_per_base']:.4f} bits/base")
    print("Markov order   fitted on: training strand / both strands")
    for order, bits in res["markov"].items():
        both = res["markov_both_strands"][order]
        best = "  (best)" if order == res["best_order"] else ""
        print(f"Markov order {order:>2}: {bits:.4f} / {both:.4f}{best}")
    verdict = "below" if res["delta"] < 0 else "above"
    print(f"LM is {abs(res['delta']):.4f} bits/base {verdict} the best chain; "
          f"report in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
