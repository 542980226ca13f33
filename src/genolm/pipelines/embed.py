"""``genolm-embed``: cached embeddings of any model for a FASTA/CSV, or a linear probe on a task.

:func:`run` has two modes:

* ``input.fasta=...`` or ``input.csv=...``: one pooled hidden layer per sequence
  (:func:`genolm.inference.embeddings.embed`) written into the run folder as ``embeddings.npy``
  (``float32 [N, H]``, the input order), ``ids.tsv`` (``id``, and ``label`` when the CSV has one)
  and ``meta.json``;
* ``task=<name>`` (``conf/task/``): the task's train, dev and test splits are embedded, a
  logistic-regression probe (:mod:`genolm.baselines.probe`) picks ``C`` on dev and is tested:
  ``probe_metrics.json`` and ``meta.json``.

Every embedding goes through the cache (:mod:`genolm.inference.embedding_cache`, under
``cache_dir``): a request seen before is loaded without loading or running the model, and
``meta.json`` says ``cached: true``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from genolm.baselines.probe import evaluate, fit_probe
from genolm.checkpoints import load_any
from genolm.config_schema import EmbedConfig
from genolm.data.labeled import read_labeled_csv, stratified_split
from genolm.data.sequences import check_dna, iter_records, read_table
from genolm.errors import GenolmError
from genolm.inference.batches import resolve_device
from genolm.inference.embedding_cache import (
    cache_key,
    entry_dir,
    input_fingerprint,
    load_entry,
    model_fingerprint,
    save_entry,
    write_outputs,
)
from genolm.inference.embeddings import embed
from genolm.io import write_json_atomic
from genolm.models.fast.switch import use_fast
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.embed")


def _checked(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """Refuse an empty input or an empty or non-DNA record (named); upper-case the sequences."""
    if frame.empty:
        raise GenolmError(f"{path}: no records")
    for name, seq in zip(frame["id"], frame["sequence"], strict=True):
        if not seq:
            raise GenolmError(f"{path}: record '{name}' is empty")
        check_dna(seq, path, name)
    return frame.assign(sequence=frame["sequence"].str.upper())


def read_csv_input(path: str) -> pd.DataFrame:
    """A CSV with a ``sequence`` column: labelled (GUE layout, :func:`read_labeled_csv`) or not."""
    if not Path(path).is_file():
        raise GenolmError(f"{path}: file not found")
    if "label" in read_table(path, nrows=0).columns:
        return read_labeled_csv(path)
    frame = read_table(path, dtype=str, keep_default_na=False)
    if "sequence" not in frame.columns:
        raise GenolmError(f"{path}: no 'sequence' column (columns found: {list(frame.columns)})")
    if "id" not in frame.columns:
        frame["id"] = [f"{Path(path).stem}:{i + 1}" for i in range(len(frame))]
    return _checked(frame[["id", "sequence"]], path)


def read_inputs(cfg: DictConfig) -> tuple[pd.DataFrame, str]:
    """Records (``id``, ``sequence``, maybe ``label``) of ``input.fasta`` or ``input.csv``, first ``n``."""
    src = cfg.input
    if src.fasta:
        records = []
        for name, seq in iter_records(src.fasta):
            records.append((name, seq))
            if src.n and len(records) >= src.n:
                break
        return _checked(pd.DataFrame(records, columns=["id", "sequence"]), src.fasta), str(src.fasta)
    frame = read_csv_input(src.csv)
    return (frame.head(src.n) if src.n else frame).reset_index(drop=True), str(src.csv)


def task_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """The task's ``train``, ``dev`` and ``test`` records, subsampled (stratified) to ``probe.n_*``."""
    data = instantiate(cfg.data, limit_train=cfg.probe.n_train or cfg.data.get("limit_train"))
    frames = data.load()
    if "test" not in frames:
        raise GenolmError(f"task '{cfg.data.name}': no test split to evaluate the probe on")
    splits = {"train": frames["train"], "dev": frames["val"], "test": frames["test"]}
    n = cfg.probe.n_eval
    for name in ("dev", "test"):
        if n and len(splits[name]) > n:
            share = n / len(splits[name])
            parts = stratified_split(splits[name], {"keep": share, "drop": 1 - share}, cfg.seed)
            splits[name] = parts["keep"]
    return splits


class LazyModel:
    """The model and tokenizer of ``model_path``, loaded on first use (a cached run never loads it)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.loaded: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``: a classifier's network (its backbone is embedded) or an LM."""
        if self.loaded is None:
            net, tok, _ = load_any(self.cfg.model_path, self.cfg.trust_remote_code)
            device = resolve_device(self.cfg.device)
            use_fast(net, self.cfg.fast, device)
            self.loaded = (net.to(device).eval(), tok)
        return self.loaded


def embed_records(cfg: DictConfig, frame: pd.DataFrame, source: str, model: LazyModel, model_fp: str
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of ``frame``'s sequences from the cache, or computed and cached; and their meta."""
    t0 = time.perf_counter()
    key = cache_key(model_fp, input_fingerprint(frame["id"], frame["sequence"]), cfg.layer, cfg.pooling)
    folder = entry_dir(cfg.cache_dir, key)
    hit = load_entry(cfg.cache_dir, key)
    if hit is not None:
        array, meta = hit
        meta.pop("key", None)  # the same as its "fingerprint"
        log.info("%s: %d embeddings loaded from the cache %s (the model was not run)", source, len(array),
                 folder)
        return array, {**meta, "model": str(cfg.model_path), "source": source, "cached": True,
                       "cache": str(folder), "seconds": time.perf_counter() - t0}
    net, tok = model.get()
    array = embed(net, tok, frame["sequence"].tolist(), cfg.layer, cfg.pooling, cfg.batch_size,
                  names=frame["id"].tolist())
    meta = {"model": str(cfg.model_path), "model_fingerprint": model_fp, "source": source,
            "layer": cfg.layer, "pooling": cfg.pooling, "fingerprint": key, "shape": list(array.shape),
            "seconds": time.perf_counter() - t0}
    save_entry(cfg.cache_dir, key, array, frame.drop(columns="sequence"), meta)
    log.info("%s: %d embeddings computed in %.1f s, cached in %s", source, len(array), meta["seconds"],
             folder)
    return array, {**meta, "cached": False, "cache": str(folder)}


def run_probe(cfg: DictConfig, model: LazyModel, model_fp: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Embed the task's splits, fit the probe on train, pick ``C`` on dev, test it."""
    splits = task_splits(cfg)
    arrays, metas = {}, {}
    for name, frame in splits.items():
        arrays[name], metas[name] = embed_records(cfg, frame, f"{cfg.data.name}/{name}", model, model_fp)
    t0 = time.perf_counter()
    labels = {name: frame["label"].to_numpy() for name, frame in splits.items()}
    fit = fit_probe(arrays["train"], labels["train"], arrays["dev"], labels["dev"], list(cfg.probe.cs),
                    seed=cfg.seed)
    test = evaluate(fit.model, arrays["test"], labels["test"])
    metrics = {"task": cfg.data.name, "model": str(cfg.model_path), "layer": cfg.layer,
               "pooling": cfg.pooling, "test": test, "c": fit.c, "dev_mcc": fit.dev_mcc, "grid": fit.grid,
               **{f"n_{name}": len(frame) for name, frame in splits.items()},
               "cached": {name: meta["cached"] for name, meta in metas.items()},
               "seconds": {**{f"embed_{n}": m["seconds"] for n, m in metas.items()},
                           "probe": time.perf_counter() - t0}}
    return metrics, {"splits": metas, "embeddings": arrays, "probe": fit, "frames": splits}


def run(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Embed the input (or a task's splits and probe them); write the outputs into the run folder."""
    t_start = time.perf_counter()
    model_fp = model_fingerprint(cfg.model_path)
    model = LazyModel(cfg)
    out = Path(cfg.paths.output_dir)
    if cfg.get("data") is not None:
        metrics, objects = run_probe(cfg, model, model_fp)
        metrics["seconds"]["total"] = time.perf_counter() - t_start
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "meta.json", {"model": str(cfg.model_path), "model_fingerprint": model_fp,
                                              "splits": objects["splits"]})
        write_json_atomic(out / "probe_metrics.json", metrics)
        return metrics, objects
    frame, source = read_inputs(cfg)
    array, meta = embed_records(cfg, frame, source, model, model_fp)
    meta["seconds"] = {"embed": meta["seconds"], "total": time.perf_counter() - t_start}
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(out, array, frame.drop(columns="sequence"), meta)
    return meta, {"embeddings": array, "records": frame}


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="embed")
@report_errors(EmbedConfig)
def main(cfg: DictConfig) -> None:
    """Embed (or probe) and print one summary line."""
    metrics, _ = run(cfg)
    if "test" in metrics:
        test = metrics["test"]
        print(f"probe test MCC {test['mcc']:.3f} (AUROC {test['auroc']:.3f}), C={metrics['c']:g}, "
              f"n_train={metrics['n_train']} ({metrics['seconds']['total']:.1f} s; "
              f"probe_metrics.json in {cfg.paths.output_dir})")
        return
    how = "from the cache" if metrics["cached"] else f"in {metrics['seconds']['embed']:.1f} s"
    print(f"{metrics['shape'][0]} sequences -> embeddings {tuple(metrics['shape'])} {how}: "
          f"embeddings.npy, ids.tsv, meta.json in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
