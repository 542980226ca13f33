"""Seed statistics and paired test-set bootstrap (genolm.benchmark.stats), on synthetic predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from genolm.benchmark import stats

RNG = np.random.default_rng(0)
N = 400
LABELS = RNG.integers(0, 2, N)


def probs_from(p1: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - p1, p1])


def noisy(strength: float, seed: int) -> np.ndarray:
    """Probabilities that lean towards the true label by ``strength`` (0: random)."""
    rng = np.random.default_rng(seed)
    return probs_from(np.clip(0.5 + strength * (LABELS - 0.5) + rng.normal(0, 0.25, N), 0, 1))


def test_resample_counts_rows_sum_to_n_and_are_seeded() -> None:
    counts = stats.resample_counts(N, 50, seed=3)
    assert counts.shape == (50, N) and (counts.sum(1) == N).all()
    assert np.array_equal(counts, stats.resample_counts(N, 50, seed=3))
    assert not np.array_equal(counts, stats.resample_counts(N, 50, seed=4))


@pytest.mark.parametrize("classes", [2, 3])
def test_weighted_metrics_equal_sklearn_on_the_resampled_set(classes: int) -> None:
    labels = RNG.integers(0, classes, N)
    probs = RNG.dirichlet(np.ones(classes), N)
    probs[np.arange(N), labels] += 0.3
    probs[:5] = probs[5]  # ties in the scores
    probs /= probs.sum(1, keepdims=True)
    counts = stats.resample_counts(N, 3, seed=1)
    for row in counts:
        index = np.repeat(np.arange(N), row)
        y, p = labels[index], probs[index]
        expected_auc = (roc_auc_score(y, p[:, 1]) if classes == 2 else
                        roc_auc_score(y, p, multi_class="ovr", average="macro"))
        assert stats.score("mcc", labels, probs, row)[0] == pytest.approx(matthews_corrcoef(y, p.argmax(1)))
        assert stats.score("auroc", labels, probs, row)[0] == pytest.approx(expected_auc)


def test_bootstrap_ci_contains_the_point_estimate() -> None:
    counts = stats.resample_counts(N, 500, seed=0)
    runs = [noisy(0.4, seed) for seed in range(3)]
    for metric in stats.METRICS:
        summary = stats.seed_summary(metric, LABELS, runs, counts)
        assert summary["lo"] < summary["mean"] < summary["hi"] and summary["seeds"] == 3


def test_identical_predictions_give_zero_difference_and_zero_width_ci() -> None:
    counts = stats.resample_counts(N, 200, seed=0)
    runs = {seed: noisy(0.4, seed) for seed in (1, 2)}
    for metric in stats.METRICS:
        diff = stats.paired_difference(metric, LABELS, runs, dict(runs), counts)
        assert diff["diff"] == 0 and diff["lo"] == 0 and diff["hi"] == 0
        assert diff["ahead"] == 0 and diff["pairs"] == 2


def test_a_model_right_everywhere_beats_a_random_one_with_a_ci_excluding_zero() -> None:
    counts = stats.resample_counts(N, 500, seed=0)
    perfect = {seed: probs_from(LABELS * 0.8 + 0.1) for seed in (1, 2, 3)}
    random = {seed: probs_from(np.random.default_rng(seed).random(N)) for seed in (1, 2, 3)}
    for metric in stats.METRICS:
        diff = stats.paired_difference(metric, LABELS, perfect, random, counts)
        assert diff["lo"] > 0 and diff["ahead"] == 3
        back = stats.paired_difference(metric, LABELS, random, perfect, counts)
        assert back["hi"] < 0 and back["ahead"] == 0


def test_single_reference_run_pairs_with_every_seed() -> None:
    counts = stats.resample_counts(N, 100, seed=0)
    runs = {seed: noisy(0.6, seed) for seed in (1, 2, 3)}
    diff = stats.paired_difference("mcc", LABELS, runs, {0: noisy(0.1, 9)}, counts)
    assert diff["pairs"] == 3 and diff["ahead"] == 3 and diff["lo"] > 0


def test_seed_mean_and_sd_equal_numpy() -> None:
    runs = [noisy(0.3 + 0.1 * seed, seed) for seed in range(4)]
    per_seed = [matthews_corrcoef(LABELS, run.argmax(1)) for run in runs]
    summary = stats.seed_summary("mcc", LABELS, runs, stats.resample_counts(N, 20))
    assert summary["mean"] == pytest.approx(np.mean(per_seed))
    assert summary["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert stats.mean_sd([0.5])[0] == 0.5 and np.isnan(stats.mean_sd([0.5])[1])


def test_degenerate_inputs() -> None:
    assert stats.weighted_mcc(np.array([1, 1, 0]), np.array([1, 1, 1]))[0] == 0  # constant prediction
    assert np.isnan(stats.weighted_auroc(np.array([True, True]), np.array([0.2, 0.4]))[0])
    with pytest.raises(stats.GenolmError, match="unknown metric"):
        stats.score("f2", LABELS, noisy(0.1, 0))
    with pytest.raises(stats.GenolmError, match="no common seed"):
        stats.paired_difference("mcc", LABELS, {1: noisy(0.1, 0), 2: noisy(0.1, 1)},
                                {3: noisy(0.1, 0), 4: noisy(0.1, 1)}, stats.resample_counts(N, 5))
