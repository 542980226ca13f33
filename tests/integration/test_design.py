"""Design: toy-oracle searches, constraints always hold, determinism, PWM scanner, CLI."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATA, MISTRAL_TF0, run_cli

from genolm.checkpoints import load_classifier
from genolm.design.algorithms import annealing, genetic, greedy
from genolm.design.constraints import Constraints
from genolm.design.motifs import Motif, hits, pfm_to_pwm, read_jaspar_pfm, scan
from genolm.design.oracle import Oracle, classifier_oracle
from genolm.design.search import search
from genolm.errors import GenolmError
from genolm.models.fast.switch import fast_mode

MOTIF = "TATAAT"


def motif_score(seqs: list[str]) -> np.ndarray:
    """Toy oracle: best number of bases matching TATAAT at any position."""
    return np.array([max(sum(a == b for a, b in zip(s[i : i + 6], MOTIF, strict=True))
                         for i in range(len(s) - 5)) for s in seqs], dtype=float)


STARTS = ["GCGCGCGCGCGCGCGCGCGCGCGCGCGCGC", "CCGGCCGGCCGGCCGGCCGGCCGGCCGGCC"]
ALGOS = {"greedy": partial(greedy, rounds=8), "genetic": partial(genetic, rounds=40, population=48,
                                                                 mutation_rate=0.05),
         "annealing": partial(annealing, rounds=60, proposals=40)}


@pytest.mark.parametrize("name", list(ALGOS))
def test_each_algorithm_finds_the_motif(name: str) -> None:
    oracle = Oracle(motif_score)
    results, trajectory = search(oracle, STARTS, ALGOS[name], Constraints(max_edits=12), seed=0,
                                   progress=False)
    assert (results["final_score"] == 6).all(), results[["id", "final_score"]]
    assert all(MOTIF in s or "ATTATA" in s for s in results["final"])
    assert results["oracle_calls"].sum() == oracle.calls > 0
    assert trajectory.groupby("id")["score"].is_monotonic_increasing.all()


@pytest.mark.parametrize("name", list(ALGOS))
def test_constraints_always_hold_and_seed_determinism(name: str) -> None:
    cons = Constraints(max_edits=4, gc_range=(0.6, 0.8), forbidden=["TATA"], max_homopolymer=3,
                       fixed=[0, 1, 2, 29])
    starts = ["GCGCATGCGCATGCGCATGCGCATGCGCAT", "CGCGTACGCGTACGCGTACGCGTACGCGTA"]  # GC 2/3
    runs = [search(Oracle(motif_score), starts, ALGOS[name], cons, seed=s, progress=False)[0]
            for s in (1, 1)]
    assert (runs[0]["final_score"] > runs[0]["start_score"]).all()
    pd.testing.assert_frame_equal(runs[0], runs[1])
    for row in runs[0].itertuples(index=False):
        assert cons.violation(row.final, row.start) is None
        assert row.edits <= 4 and "TATA" not in row.final and "ATAT" not in row.final
        assert row.final[:3] == row.start[:3] and row.final[29] == row.start[29]


def test_minimize_and_bad_constraints() -> None:
    results, _ = search(Oracle(motif_score, maximize=False), ["TATAATGGGG"], partial(greedy, rounds=3),
                          Constraints(), progress=False)
    assert results["start_score"][0] == 6 and results["final_score"][0] < 6
    with pytest.raises(GenolmError, match="GC range .* is empty"):
        Constraints(gc_range=(0.7, 0.3))
    with pytest.raises(GenolmError, match="already violates the constraints: contains forbidden motif"):
        search(Oracle(motif_score), ["GGTATAATGG"], greedy, Constraints(forbidden=["TATAAT"]),
                 progress=False)


def test_pwm_scanner_planted_motif_and_hand_score(tmp_path: Path) -> None:
    counts = np.array([[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]])  # ACGT
    motif = Motif("M1", "toy", pfm_to_pwm(counts))
    p_match, p_other = (10 + 0.2) / 10.8, 0.2 / 10.8
    assert motif.max_score == pytest.approx(4 * np.log2(p_match / 0.25))
    seq = "GGGGGACGTGGGGG"
    scores = scan(seq, motif)
    assert int(np.argmax(scores)) == 5 and scores[5] == pytest.approx(motif.max_score)
    # "GGGA" vs ACGT: forward only the G at position 2 matches; its reverse complement TCCC only
    # the C at position 1: both strands score 1 match + 3 mismatches
    assert scan("GGGA", motif)[0] == pytest.approx(np.log2(p_match / 0.25) + 3 * np.log2(p_other / 0.25))
    assert hits("TTTTACGTTTTT", [motif], 0.9) == {"M1.toy"} and hits("TTTTTTTT", [motif], 0.9) == set()
    jaspar = read_jaspar_pfm(DATA / "motifs" / "JASPAR2022_vertebrates.pfm")
    assert len(jaspar) == 838 and jaspar[0].name == "Arnt" and jaspar[0].pwm.shape == (6, 4)
    rc = "AAAAA" + "CACGTG"[::-1].translate(str.maketrans("ACGT", "TGCA")) + "AAAAA"
    assert "MA0004.1.Arnt" in hits(rc, jaspar[:1], 0.9)  # found on the reverse strand


@pytest.mark.subprocess
def test_cli_optimize_with_real_oracle(tmp_path: Path) -> None:
    tf0 = DATA / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0"
    res = run_cli("genolm-optimize", f"model_path={tf0}", f"start.csv={DATA}/GUE/tf/0/test.csv",
                  "start.label=0", "start.n=2", "algorithm.rounds=3", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "optimize" / "runs").iterdir()
    results = pd.read_csv(run / "results.tsv", sep="\t")
    assert (results["final_score"] > results["start_score"]).all() and (results["edits"] <= 3).all()
    assert results["oracle_calls"].gt(300).all() and (run / "trajectory.png").is_file()
    assert (run / "designs.fa").read_text().count(">") == 2
    not_classifier = f"model_path={DATA}/models/Mixtral-8x7B-v0.1-dna-config"
    for args, match in [(["oracle.target_class=5"], "class 5 out of range"),
                        (["constraints.gc_range=[0.9,0.1]"], "gc_range [0.9, 0.1] is empty"),
                        ([not_classifier], "not a sequence classifier")]:
        bad = run_cli("genolm-optimize", f"model_path={tf0}", f"start.csv={DATA}/GUE/tf/0/test.csv",
                      "start.n=1", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}", *args)
        assert bad.returncode == 1 and match in bad.stderr, (args, bad.stderr[-500:])


def test_fast_classifier_oracle_equals_transformers_forward() -> None:
    """The real tf0 classifier: fast trunk on a padded batch of unequal lengths vs transformers'
    own forward one sequence at a time."""
    module = load_classifier(MISTRAL_TF0)
    seqs = ["ACGT" * 25, "GATTACA" * 9, "TTTTGGGGCCCCAAAA" * 4 + "ACG"]
    fast = classifier_oracle(module, output="logit", device="cpu")(seqs)
    with fast_mode(module.net, False):
        slow = np.concatenate([classifier_oracle(module, output="logit", device="cpu")([s]) for s in seqs])
    assert np.allclose(fast, slow, atol=1e-4) and np.ptp(fast) > 1e-3
