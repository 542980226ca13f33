"""The benchmark table: per task and model, seed mean ± sd, bootstrap CIs and paired differences.

All models of a task are scored on the same bootstrap replicates of its test set
(:func:`genolm.benchmark.stats.resample_counts`), so the CIs of differences are paired.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from genolm.benchmark import stats
from genolm.benchmark.runs import Run, read_run
from genolm.errors import GenolmError

KMER = "kmer"


def load_task(runs: Sequence[Run]) -> tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]:
    """Test labels and, per model and seed, probabilities aligned on the first run's record ids.

    Raises:
        GenolmError: two runs of the task scored different test records or labels.

    """
    labels, ids, models = None, None, defaultdict(dict)
    for run in runs:
        _, probs, table = read_run(run.path)
        if ids is None:
            ids, labels = table["id"].to_numpy(), table["label"].to_numpy()
        elif not np.array_equal(table["id"].to_numpy(), ids):
            index = pd.Index(table["id"])
            if len(table) != len(ids) or not index.is_unique or not index.isin(ids).all():
                raise GenolmError(f"{run.path}: its test records differ from those of {runs[0].path}")
            order = index.get_indexer(ids)
            table, probs = table.iloc[order], probs[order]
        if not np.array_equal(table["label"].to_numpy(), labels):
            raise GenolmError(f"{run.path}: its test labels differ from those of {runs[0].path}")
        models[run.model][run.seed] = probs
    width = max(p.shape[1] for seeds in models.values() for p in seeds.values())
    for seeds in models.values():  # a run that never saw the top class has fewer columns
        for seed, probs in seeds.items():
            seeds[seed] = np.pad(probs, ((0, 0), (0, width - probs.shape[1])))
    return labels, dict(models)


def _key(metric: str, tag: str, stat: str) -> str:
    """TSV column of one comparison statistic, e.g. ``mcc_vs_kmer`` or ``mcc_vs_kmer_lo``."""
    return f"{metric}_vs_{tag}" + ("" if stat == "diff" else f"_{stat}")


def _fmt(mean: float, sd: float, lo: float, hi: float) -> str:
    spread = "" if np.isnan(sd) else f" ± {sd:.3f}"
    return f"{mean:.3f}{spread} [{lo:.3f}, {hi:.3f}]"


def _fmt_diff(diff: dict[str, float] | None) -> str:
    if diff is None:
        return "-"
    ci = f"[{diff['lo']:+.3f}, {diff['hi']:+.3f}]"
    return f"{diff['diff']:+.3f} {ci} {int(diff['ahead'])}/{int(diff['pairs'])}"


def build(runs: Sequence[Run], reference: str | None, n_boot: int = 1000, boot_seed: int = 0,
          level: float = 0.95) -> pd.DataFrame:
    """One row per task and model with every statistic, as numbers (the TSV).

    Args:
        runs: finished runs (:func:`genolm.benchmark.runs.scan`).
        reference: the model every other one is compared with (besides the k-mer baseline).
        n_boot: bootstrap replicates per task.
        boot_seed: seed of the replicates (one draw per task, shared by its models).
        level: confidence level of the intervals.

    Returns:
        Columns ``task``, ``model``, ``seeds``; per metric ``<m>_mean``, ``<m>_sd``, ``<m>_lo``,
        ``<m>_hi``; per comparison ``<m>_vs_<other>``, ``..._lo``, ``..._hi``, ``..._ahead``,
        ``..._pairs`` with ``other`` = ``ref`` or ``kmer``.

    """
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    rows = []
    for task in sorted(by_task):
        labels, models = load_task(by_task[task])
        counts = stats.resample_counts(len(labels), n_boot, boot_seed)
        for model in sorted(models, key=lambda m: (m != reference, m == KMER, m)):
            row: dict = {"task": task, "model": model, "seeds": len(models[model])}
            for metric in stats.METRICS:
                summary = stats.seed_summary(metric, labels, list(models[model].values()), counts, level)
                row.update({f"{metric}_{k}": summary[k] for k in ("mean", "sd", "lo", "hi")})
                for tag, other in (("ref", reference), (KMER, KMER)):
                    if other is None or other == model or other not in models:
                        continue
                    diff = stats.paired_difference(metric, labels, models[model], models[other], counts,
                                                   level)
                    row.update({_key(metric, tag, k): v for k, v in diff.items()})
            rows.append(row)
    table = pd.DataFrame(rows)
    ordered = ["task", "model", "seeds"]
    ordered += [c for m in stats.METRICS for c in table.columns if c.startswith(m)]
    return table[ordered]


def markdown(table: pd.DataFrame, reference: str | None, level: float = 0.95) -> pd.DataFrame:
    """The table in readable columns: ``mean ± sd [CI]`` and ``diff [CI] ahead/pairs``."""
    if table.empty:
        return table
    out = table[["task", "model", "seeds"]].copy()
    for metric in stats.METRICS:
        out[f"test {metric.upper()} mean ± sd [{level:.0%} CI]"] = [
            _fmt(r[f"{metric}_mean"], r[f"{metric}_sd"], r[f"{metric}_lo"], r[f"{metric}_hi"])
            for _, r in table.iterrows()]
    for tag, name in (("ref", reference), (KMER, "k-mer LR")):
        if name is None or f"mcc_vs_{tag}" not in table:
            continue
        out[f"ΔMCC vs {name} [CI] seeds ahead"] = [
            _fmt_diff(None if pd.isna(r.get(f"mcc_vs_{tag}")) else
                      {k: r[_key("mcc", tag, k)]
                       for k in ("diff", "lo", "hi", "ahead", "pairs")})
            for _, r in table.iterrows()]
    return out


NOTE = """Each row: one model on one task's test split. MCC and AUROC: mean ± sd over seeds (sample sd) and
a {level:.0%} percentile bootstrap CI of the seed mean ({n_boot} replicates resampling the test sequences,
the same replicates for every model and seed of a task). ΔMCC: seed-mean MCC minus that of the
reference, paired bootstrap CI on the same replicates, and in how many seeds the model scores higher
(seeds pair by number; the deterministic k-mer LR, fitted once, pairs with every seed).
"""
