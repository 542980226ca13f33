"""Run folders of a benchmark: one per task x model x seed, skipped once finished.

Layout: ``<out_dir>/runs/<task>/<model>/seed<k>/`` holding ``metrics.json`` and
``predictions_test.tsv`` (columns ``id,label,pred,prob_0,...``) for finetuned backbones and
baselines alike. A run is finished when both files exist (finetuning writes the predictions
first and ``metrics.json`` last, each atomically); a folder without them is what a crashed run
left and is cleared before the run starts again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from genolm.errors import GenolmError

log = logging.getLogger("genolm.benchmark")
BASELINES = ("kmer", "cnn")
PREDICTIONS = "predictions_test.tsv"


@dataclass(frozen=True)
class Run:
    """One finished or planned run: ``model`` on ``task`` with ``seed``, in folder ``path``."""

    task: str
    model: str
    seed: int
    path: Path

    @property
    def finished(self) -> bool:
        """Both outputs are there."""
        return (self.path / "metrics.json").is_file() and (self.path / PREDICTIONS).is_file()


def run_folder(out_dir: str | Path, task: str, model: str, seed: int) -> Path:
    """The folder of one run in the benchmark layout."""
    return Path(out_dir) / "runs" / task / model / f"seed{seed}"


def fresh(path: Path) -> None:
    """Clear what an unfinished run left in ``path`` (a benchmark-owned run folder)."""
    if path.exists():
        log.warning("%s: unfinished run, starting it again", path)
        shutil.rmtree(path)


@contextlib.contextmanager
def hydra_ready() -> Iterator[None]:
    """Hydra's compose API, inside a running Hydra app or set up on genolm's config folder."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from genolm.utils import config_dir

    if GlobalHydra.instance().is_initialized():
        yield
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            yield


def run_overrides(cfg: DictConfig, task: str, model_path: str, seed: int, out: Path) -> list[str]:
    """Overrides that make a finetuning or embedding config one benchmark run.

    Task, model, seed and output folder, plus the benchmark's paths, fast path and
    ``trust_remote_code``.
    """
    return [f"task={task}", f"model_path={model_path}", f"seed={seed}", f"paths.output_dir={out}",
            f"paths.data_dir={cfg.paths.data_dir}", f"paths.cache_dir={cfg.paths.cache_dir}",
            f"paths.log_dir={cfg.paths.log_dir}", f"fast={cfg.fast}",
            f"trust_remote_code={cfg.trust_remote_code}"]


def finetune_config(cfg: DictConfig, task: str, model_path: str, seed: int, out: Path,
                    name: str) -> DictConfig:
    """``conf/finetune.yaml`` composed for one run, with the benchmark's extra ``finetune`` overrides.

    The paths follow the benchmark's; a W&B logger joins the benchmark's ``group``.
    """
    from hydra import compose
    from hydra.errors import HydraException

    overrides = [*run_overrides(cfg, task, model_path, seed, out), *cfg.get("finetune", [])]
    try:
        with hydra_ready():
            run_cfg = compose(config_name="finetune", overrides=overrides)
    except HydraException as err:
        raise GenolmError(f"finetune overrides of {name} on {task}: {str(err).splitlines()[0]}") from None
    wandb = OmegaConf.select(run_cfg, "logger.wandb")
    if wandb is not None:
        with open_dict(run_cfg):
            wandb.group = cfg.group
            wandb.name = f"{task}/{name}/seed{seed}"
    return run_cfg


def task_splits(cfg: DictConfig, task: str, seed: int) -> dict[str, pd.DataFrame]:
    """Train, val and test records of ``task`` exactly as a finetuning run with ``seed`` reads them.

    The seed matters only for tasks without a val file (GUE EMP), whose val split it draws.
    """
    from hydra.utils import instantiate

    run_cfg = finetune_config(cfg, task, "unused", seed, Path(cfg.out_dir), "splits")
    return instantiate(run_cfg.data).load()


def fit_baseline(name: str, splits: dict[str, pd.DataFrame], seed: int, options: DictConfig | None
                 ) -> tuple[dict[str, float], pd.DataFrame, dict]:
    """Fit baseline ``name`` on train (selection on val); test metrics, predictions, fit details."""
    from genolm.baselines import cnn, kmer

    train, val, test = splits["train"], splits["val"], splits["test"]
    kwargs = OmegaConf.to_container(options, resolve=True) if options else {}
    start = time.perf_counter()
    if name == "kmer":
        fit = kmer.fit_kmer_logreg(train["sequence"], train["label"], val["sequence"], val["label"],
                                   seed=seed, **kwargs)
        model, details = fit.model, {"k": fit.k, "c": fit.c, "dev_mcc": fit.dev_mcc}
    elif name == "cnn":
        fit = cnn.fit_cnn(train["sequence"], train["label"], val["sequence"], val["label"], seed=seed,
                          **kwargs)
        model = fit
        details = {"best_epoch": fit.best_epoch, "epochs": len(fit.history), "dev_mcc": fit.dev_mcc}
    else:
        raise GenolmError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    proba = model.predict_proba(test["sequence"].tolist())
    details["seconds"] = time.perf_counter() - start
    return (*test_outputs(test, proba, model.classes_, details["dev_mcc"]), details)


def test_outputs(test: pd.DataFrame, proba: np.ndarray, classes: np.ndarray, dev_mcc: float
                 ) -> tuple[dict[str, float], pd.DataFrame]:
    """Test metrics and the predictions table (``id,label,pred,prob_<class>...``) of one model."""
    from genolm.baselines.kmer import classification_scores

    scores = classification_scores(test["label"], proba, classes)
    table = pd.DataFrame({"id": test["id"].to_numpy(), "label": test["label"].to_numpy(),
                          "pred": np.asarray(classes)[proba.argmax(1)]})
    for column, label in enumerate(classes):
        table[f"prob_{label}"] = proba[:, column]
    metrics = {"test/mcc": scores["mcc"], "test/auroc": scores["auroc"], "test/acc": scores["accuracy"],
               "test/f1": scores["f1"], "val/mcc_best": dev_mcc}
    return metrics, table


def fit_embedding_probe(cfg: DictConfig, task: str, model_path: str, out: Path
                        ) -> tuple[dict[str, float], pd.DataFrame, dict]:
    """``genolm-embed``'s logistic-regression probe of one backbone on ``task`` (cached embeddings).

    The backbone's mean-pooled last-layer states of train, val and test (cached under the
    benchmark's ``paths.cache_dir``) feed :func:`genolm.baselines.probe.fit_probe`; test metrics,
    predictions and fit details as :func:`fit_baseline` returns them.
    """
    from hydra import compose

    from genolm.pipelines import embed

    overrides = run_overrides(cfg, task, model_path, cfg.seed, out)
    with hydra_ready():
        embed_cfg = compose(config_name="embed", overrides=overrides)
    start = time.perf_counter()
    result, objects = embed.run(embed_cfg)
    fit = objects["probe"]
    proba = fit.model.predict_proba(objects["embeddings"]["test"])
    details = {"c": fit.c, "dev_mcc": fit.dev_mcc, "seconds": time.perf_counter() - start,
               "cached": result["cached"]}
    return (*test_outputs(objects["frames"]["test"], proba, fit.model.classes_, fit.dev_mcc), details)


def read_run(path: Path) -> tuple[str, np.ndarray, pd.DataFrame]:
    """``(task, probabilities (n, classes), predictions table)`` of a finished run folder."""
    meta = json.loads((path / "metrics.json").read_text())
    table = pd.read_csv(path / PREDICTIONS, sep="\t", dtype={"id": str})
    columns = sorted((c for c in table.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
    if not columns or "id" not in table or "label" not in table:
        raise GenolmError(f"{path / PREDICTIONS}: want columns id, label, prob_0, prob_1, ...")
    probs = np.zeros((len(table), int(columns[-1][5:]) + 1))
    for column in columns:
        probs[:, int(column[5:])] = table[column].to_numpy()
    return str(meta.get("task", "")), probs, table


def run_seed(path: Path) -> int:
    """Seed of a run folder: ``seed<k>`` in the benchmark layout, else the job's ``.hydra/config.yaml``.

    A ``genolm-eval`` folder inside a finetuning run (e.g. ``<run>/eval_average``) takes the seed of
    the run it evaluates.
    """
    if path.name.startswith("seed") and path.name[4:].isdigit():
        return int(path.name[4:])
    config = path / ".hydra" / "config.yaml"
    parent = path.parent / ".hydra" / "config.yaml"
    if config.is_file():
        values = OmegaConf.load(config)
        if "split" in values and parent.is_file():  # an evaluation of the finetuning run around it
            values = OmegaConf.load(parent)
        return int(values.get("seed", 0))
    raise GenolmError(f"{path}: cannot tell the run's seed (no seed<k> folder name, no .hydra/config.yaml)")


def scan(out_dir: str | Path, extra_runs: dict[str, list[str]] | None = None) -> list[Run]:
    """Finished runs under ``out_dir/runs`` and in ``extra_runs`` (model name -> run folder globs).

    Extra folders are any finetuning runs (e.g. the jobs of a ``make gue`` sweep): the task comes
    from their ``metrics.json``, the seed from their ``.hydra/config.yaml``.
    """
    runs = [Run(p.parents[1].name, p.parent.name, run_seed(p), p)
            for p in sorted(Path(out_dir).glob("runs/*/*/seed*"))]
    for model, patterns in (extra_runs or {}).items():
        folders = sorted({Path(f) for pattern in patterns for f in _glob(pattern)})
        if not folders:
            raise GenolmError(f"extra_runs.{model}: no run folder matches {list(patterns)}")
        for folder in folders:
            metrics_file = folder / "metrics.json"
            meta = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
            runs.append(Run(str(meta.get("task", "")), model, run_seed(folder), folder))
    return [run for run in runs if run.finished]


def _glob(pattern: str) -> list[Path]:
    """Folders matching ``pattern`` (absolute or relative to the working directory)."""
    path = Path(pattern)
    anchor = Path(path.anchor) if path.is_absolute() else Path(".")
    relative = str(path.relative_to(anchor)) if path.is_absolute() else pattern
    return [p for p in anchor.glob(relative) if p.is_dir()] if any(c in pattern for c in "*?[") else [path]
