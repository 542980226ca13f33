"""``genolm-benchmark``: finetune every task x backbone x seed, fit the baselines, tabulate with CIs.

Each finetuning run composes ``conf/finetune.yaml`` (plus the benchmark's ``finetune`` overrides)
with Hydra's compose API and calls :func:`genolm.pipelines.finetune.train` in this process, one run
folder each (:mod:`genolm.benchmark.runs`); finished runs are skipped, so a crashed benchmark
resumes where it stopped. ``aggregate=true`` only builds the table from the run folders there are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from genolm.benchmark import runs as bench_runs
from genolm.benchmark import table as bench_table
from genolm.config_schema import BenchmarkConfig, FinetuneConfig, validate
from genolm.errors import GenolmError
from genolm.hub import resolve_model_path
from genolm.io import markdown_table, model_source, write_text_atomic, write_tsv_atomic
from genolm.utils import config_dir, report_errors

log = logging.getLogger("genolm.pipelines.benchmark")


def check(cfg: DictConfig) -> None:
    """Refuse unknown tasks, clashing names, missing backbones and bad finetune configs before any run."""
    known = sorted(p.stem for p in (Path(config_dir()) / "task").glob("*.yaml") if not p.stem.startswith("_"))
    for task in cfg.tasks:
        if task not in known:
            raise GenolmError(f"unknown task '{task}': no conf/task/{task}.yaml (tasks: {', '.join(known)})")
    for name in [*(cfg.backbones or {}), *(cfg.get("extra_runs") or {})]:
        if name in bench_runs.BASELINES:
            raise GenolmError(f"model name '{name}' is taken by a baseline; rename it")
    if cfg.aggregate:  # the runs are there already: their models need not be
        return
    for path in (cfg.backbones or {}).values():
        model_source(resolve_model_path(path))  # .ckpt, HF folder or Hub id, else one clear error
    if not cfg.backbones and not cfg.baselines:
        raise GenolmError("nothing to run: give backbones={name: model_path} and/or baselines=[kmer,cnn]")
    for task in cfg.tasks:  # bad finetune overrides fail now, not after hours of runs
        for name, path in (cfg.backbones or {}).items():
            run_cfg = bench_runs.finetune_config(cfg, task, str(path), 1, Path(cfg.out_dir), name)
            validate(run_cfg, FinetuneConfig)
            if run_cfg.trainer.get("devices", 1) != 1 or run_cfg.trainer.get("num_nodes", 1) != 1:
                raise GenolmError("genolm-benchmark finetunes in its own process on one device "
                                  "(trainer.devices=1); run DDP jobs with genolm-finetune -m and tabulate "
                                  "them with aggregate=true extra_runs={name: [run folders]}")


def reference_model(cfg: DictConfig) -> str | None:
    """``reference``, else the first backbone (or extra run set); ``None`` without any."""
    names = [*(cfg.backbones or {}), *(cfg.get("extra_runs") or {})]
    return cfg.reference or (names[0] if names else None)


Job = tuple[str, int, Callable[[Path], None]]


def run_all(cfg: DictConfig) -> tuple[int, int]:
    """Every missing run of the benchmark; returns ``(runs started, runs skipped)``."""
    started = skipped = 0
    for task in cfg.tasks:
        for model, seed, work in jobs(cfg, task):
            run = bench_runs.Run(task, model, seed, bench_runs.run_folder(cfg.out_dir, task, model, seed))
            if run.finished:
                skipped += 1
                continue
            bench_runs.fresh(run.path)
            work(run.path)
            started += 1
    return started, skipped


def jobs(cfg: DictConfig, task: str) -> Iterator[Job]:
    """``(model, seed, work)`` of every run of ``task``: baselines, finetunes, then each backbone's probe.

    ``work(folder)`` writes the run's ``metrics.json`` and ``predictions_test.tsv`` into ``folder``.
    """
    seeds = range(1, cfg.seeds + 1)
    for name in cfg.baselines:
        for seed in ([0] if name == bench_table.KMER else seeds):  # the k-mer LR is deterministic
            yield name, seed, partial(_baseline, cfg, task, name, seed)
    for name, path in (cfg.backbones or {}).items():
        for seed in seeds:
            yield name, seed, partial(_finetune, cfg, task, name, str(path), seed)
        if cfg.probe:  # deterministic given the embeddings: one fit, like the k-mer LR
            yield f"{name}_probe", 0, partial(_probe, cfg, task, name, str(path))


def _baseline(cfg: DictConfig, task: str, name: str, seed: int, folder: Path) -> None:
    """Fit baseline ``name`` on ``task`` (the k-mer LR's seed 0 reads the config's seed's splits)."""
    from genolm.pipelines.finetune import write_outputs

    log.info("baseline %s on %s, seed %d", name, task, seed)
    splits = bench_runs.task_splits(cfg, task, seed or cfg.seed)
    metrics, predictions, details = bench_runs.fit_baseline(name, splits, seed, cfg.get(name))
    write_outputs(folder, metrics, predictions, "test", {"task": task, "model": name, "seed": seed,
                                                         **details})


def _finetune(cfg: DictConfig, task: str, name: str, path: str, seed: int, folder: Path) -> None:
    """Finetune backbone ``name`` on ``task`` with ``seed`` (genolm-finetune's ``train``, in process)."""
    from genolm.io import write_json_atomic
    from genolm.pipelines.finetune import train

    run_cfg = bench_runs.finetune_config(cfg, task, path, seed, folder, name)
    validate(run_cfg, FinetuneConfig)
    log.info("finetune %s on %s, seed %d -> %s", name, task, seed, folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "benchmark_run.json", {"task": task, "model": name, "model_path": path,
                                                      "seed": seed})
    train(run_cfg)


def _probe(cfg: DictConfig, task: str, name: str, path: str, folder: Path) -> None:
    """The embedding probe of backbone ``name`` on ``task`` (model ``<name>_probe``, seed 0)."""
    from genolm.pipelines.finetune import write_outputs

    log.info("embedding probe of %s on %s", name, task)
    metrics, predictions, details = bench_runs.fit_embedding_probe(cfg, task, path, folder / "embed")
    write_outputs(folder, metrics, predictions, "test", {"task": task, "model": f"{name}_probe",
                                                         "seed": 0, **details})


def run(cfg: DictConfig) -> dict:
    """Run (unless ``aggregate``) and tabulate the benchmark; write ``benchmark.tsv`` and ``benchmark.md``.

    Returns:
        ``table`` (numbers), ``markdown`` (the rendered table), ``started``, ``skipped``, ``out_dir``.

    """
    check(cfg)
    started, skipped = (0, 0) if cfg.aggregate else run_all(cfg)
    wanted = set(cfg.tasks)
    extra = OmegaConf.to_container(cfg.extra_runs, resolve=True) if cfg.get("extra_runs") else {}
    found = [r for r in bench_runs.scan(cfg.out_dir, extra) if r.task in wanted]
    if not found:
        raise GenolmError(f"no finished runs of tasks {list(cfg.tasks)} under {cfg.out_dir}/runs "
                          "(or extra_runs) to tabulate")
    reference = reference_model(cfg)
    boot = cfg.bootstrap
    numbers = bench_table.build(found, reference, boot.n, boot.seed, boot.level)
    readable = bench_table.markdown(numbers, reference, boot.level)
    out = Path(cfg.out_dir)
    write_tsv_atomic(numbers, out / "benchmark.tsv")
    text = "\n".join([f"# Benchmark: {', '.join(sorted(numbers['task'].unique()))}", "",
                      bench_table.NOTE.format(level=boot.level, n_boot=boot.n),
                      markdown_table(readable)])
    write_text_atomic(out / "benchmark.md", text)
    return {"table": numbers, "markdown": text, "started": started, "skipped": skipped, "out_dir": out}


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="benchmark")
@report_errors(BenchmarkConfig)
def main(cfg: DictConfig) -> None:
    """Run the benchmark and print its table."""
    result = run(cfg)
    print(result["markdown"])
    print(f"{result['started']} runs done, {result['skipped']} already finished; "
          f"table in {result['out_dir'] / 'benchmark.md'} and benchmark.tsv")


if __name__ == "__main__":
    main()
