"""Search algorithms over single-base substitutions: greedy, genetic, simulated annealing.

Each takes ``(oracle, start, constraints, rng, **settings)`` and returns the trajectory: one dict
per round with the round's best sequence and score (objective, higher is better).
"""

from __future__ import annotations

import math

import numpy as np

from genolm.data.sequences import BASES
from genolm.design.constraints import Constraints
from genolm.design.oracle import Oracle


def substitutions(seq: str, fixed: set[int]) -> list[str]:
    """Every single-base substitution of ``seq`` outside ``fixed`` positions."""
    return [seq[:i] + b + seq[i + 1 :] for i in range(len(seq)) if i not in fixed
            for b in BASES if b != seq[i]]


def greedy(oracle: Oracle, start: str, constraints: Constraints, rng: np.random.Generator,
           rounds: int = 10) -> list[dict]:
    """Score all allowed single substitutions in one batch per round; keep the best if it improves."""
    current, best = start, float(oracle([start])[0])
    trajectory = [{"round": 0, "sequence": current, "score": best}]
    for r in range(1, rounds + 1):
        candidates = [c for c in substitutions(current, set(constraints.fixed))
                      if constraints.allows(c, start)]
        if not candidates:
            break
        scores = oracle(candidates)
        top = int(np.argmax(scores))
        if scores[top] <= best:
            break
        current, best = candidates[top], float(scores[top])
        trajectory.append({"round": r, "sequence": current, "score": best})
    return trajectory


def _mutate(seq: str, rate: float, fixed: set[int], rng: np.random.Generator) -> str:
    chars = list(seq)
    for i in np.flatnonzero(rng.random(len(seq)) < rate):
        if i not in fixed:
            chars[i] = BASES[(BASES.index(chars[i]) + rng.integers(1, 4)) % 4]
    return "".join(chars)


def genetic(oracle: Oracle, start: str, constraints: Constraints, rng: np.random.Generator,
            rounds: int = 10, population: int = 64, mutation_rate: float = 0.02,
            crossover: float = 0.5, elite: int = 4, tournament: int = 4) -> list[dict]:
    """Tournament selection, uniform crossover, per-base mutation, elitism; invalid children die."""
    fixed = set(constraints.fixed)
    pop = [start] + [s for s in (_mutate(start, mutation_rate, fixed, rng) for _ in range(population * 4))
                     if constraints.allows(s, start)][: population - 1]
    scores = oracle(pop)
    trajectory = [{"round": 0, "sequence": start, "score": float(scores[0])}]
    for r in range(1, rounds + 1):
        order = np.argsort(-scores)
        children = [pop[i] for i in order[:elite]]
        attempts = 0
        while len(children) < population and attempts < population * 20:
            attempts += 1
            a, b = (pop[max(rng.choice(len(pop), tournament), key=lambda i: scores[i])] for _ in range(2))
            if rng.random() < crossover:
                mask = rng.random(len(start)) < 0.5
                a = "".join(x if m else y for x, y, m in zip(a, b, mask, strict=True))
            child = _mutate(a, mutation_rate, fixed, rng)
            if constraints.allows(child, start):
                children.append(child)
        pop, scores = children, oracle(children)
        top = int(np.argmax(scores))
        trajectory.append({"round": r, "sequence": pop[top], "score": float(scores[top])})
    return trajectory


def annealing(oracle: Oracle, start: str, constraints: Constraints, rng: np.random.Generator,
              rounds: int = 10, proposals: int = 32, t_start: float = 0.1, t_end: float = 0.001
              ) -> list[dict]:
    """Each round: score ``proposals`` random allowed substitutions, Metropolis-accept the best one.

    The temperature decays geometrically from ``t_start`` to ``t_end`` over the rounds.
    """
    fixed = set(constraints.fixed)
    current, cur_score = start, float(oracle([start])[0])
    best, best_score = current, cur_score
    trajectory = [{"round": 0, "sequence": start, "score": cur_score}]
    for r in range(1, rounds + 1):
        temp = t_start * (t_end / t_start) ** ((r - 1) / max(1, rounds - 1))
        options = [c for c in substitutions(current, fixed) if constraints.allows(c, start)]
        if not options:
            break
        picks = [options[i] for i in rng.choice(len(options), min(proposals, len(options)), replace=False)]
        scores = oracle(picks)
        top = int(np.argmax(scores))
        delta = float(scores[top]) - cur_score
        if delta >= 0 or rng.random() < math.exp(delta / temp):
            current, cur_score = picks[top], float(scores[top])
        if cur_score > best_score:
            best, best_score = current, cur_score
        trajectory.append({"round": r, "sequence": best, "score": best_score})
    return trajectory

