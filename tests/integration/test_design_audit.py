"""Design audit: helpers on hand-made cases; `genolm-optimize audit.enabled=true` with the tf0 oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import DATA, MISTRAL_TF0, run_cli

from genolm.checkpoints import load_classifier
from genolm.design.audit import edited_positions, gained_sites, percentiles, position_importance, random_edits
from genolm.design.motifs import Motif, hits, pfm_to_pwm
from genolm.interpret.ism import classifier_scorer, saturation_mutagenesis

ACGT = Motif("M1", "toy", pfm_to_pwm(np.eye(4) * 10))
AUDIT_FILES = ("audit_ism.npz", "audit.md", "audit_designs.tsv", "audit_edits.tsv")


def test_helpers() -> None:
    assert edited_positions("AAAAAA", "AAGAAT").tolist() == [2, 5]
    effects = np.array([[0.0, -2.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-3.0, 0.0, 0.1]])
    assert position_importance(effects).tolist() == [3.0, 2.0, 0.5]
    assert percentiles(np.array([3.0, 2.0, 0.5])).tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    control = random_edits("ACGT" * 10, 7, np.random.default_rng(0))
    assert len(edited_positions("ACGT" * 10, control)) == 7
    start, final = "GGGGGGGGGG", "GGGACGTGGG"  # ACGT planted at 3 (its own reverse complement)
    assert hits(final, [ACGT], 0.9) - hits(start, [ACGT], 0.9) == {"M1.toy"}
    assert gained_sites(final, ["M1.toy"], [ACGT], 0.9) == [("M1.toy", 3, 7)]
    assert gained_sites(final, [], [ACGT], 0.9) == []


def _optimize(tmp_path: Path, *args: str) -> Path:
    res = run_cli("genolm-optimize", f"model_path={MISTRAL_TF0}", "start.random_length=40", "start.n=2",
                  "algorithm.rounds=3", "device=cpu", f"paths.root_dir={tmp_path}", f"paths.data_dir={DATA}",
                  *args)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "optimize" / "runs").iterdir()
    return run


@pytest.mark.subprocess
def test_audit_with_the_tf0_oracle(tmp_path: Path) -> None:
    run = _optimize(tmp_path, "audit.enabled=true", "audit.logos=1")
    results = pd.read_csv(run / "results.tsv", sep="\t")
    with np.load(run / "audit_ism.npz") as npz:
        arrays = dict(npz)
    assert arrays["starts"].tolist() == results["start"].tolist()
    assert arrays["finals"].tolist() == results["final"].tolist()
    for which in ("start", "final"):
        effects, seqs = arrays[f"{which}_effects"], arrays[f"{which}s"]
        assert effects.shape == (2, 4, 40) and np.abs(effects).max() > 0
        observed = np.array([[["ACGT".index(b) == k for b in s] for k in range(4)] for s in seqs])
        assert np.all(effects[observed] == 0) and np.all(effects[~observed] != 0)
    module = load_classifier(MISTRAL_TF0)
    direct, reference = saturation_mutagenesis(classifier_scorer(module, 1, "logit", "cpu"),
                                               results["final"].tolist(), progress=False)
    np.testing.assert_allclose(arrays["final_effects"], direct, atol=1e-5)
    np.testing.assert_allclose(arrays["final_reference"], reference, atol=1e-5)
    designs = pd.read_csv(run / "audit_designs.tsv", sep="\t")
    assert designs["id"].tolist() == ["random1", "random2"]
    assert designs["edits"].tolist() == results["edits"].tolist()
    assert {"ratio_start", "ratio_final", "pct_final", "edits_in_gained", "random_gained"} <= set(designs)
    edits = pd.read_csv(run / "audit_edits.tsv", sep="\t", keep_default_na=False)
    assert len(edits) == results["edits"].sum()
    assert (edits["to"] != edits["from"]).all() and edits["final_pct"].between(0, 1).all()
    text = (run / "audit.md").read_text()
    assert "| id | start_score |" in text and "random2" in text and "JASPAR motifs gained" in text
    assert [p.name for p in (run / "audit_logos").iterdir()] == ["design1_random1.png"]
    assert not (run / "audit_motifs.tsv").exists()


@pytest.mark.subprocess
def test_audit_disabled_and_bad_values(tmp_path: Path) -> None:
    run = _optimize(tmp_path / "off")
    assert (run / "results.tsv").is_file()
    assert not any((run / name).exists() for name in (*AUDIT_FILES, "audit_logos"))
    for arg, match in [("audit.output=odds", "audit.output='odds': Input should be 'logit' or 'prob'"),
                       ("audit.logos=-1", "audit.logos=-1: Input should be greater than or equal to 0"),
                       ("audit.modisco_settings.flank_size=-2", "audit.modisco_settings.flank_size=-2")]:
        bad = run_cli("genolm-optimize", f"model_path={MISTRAL_TF0}", "start.random_length=40",
                      f"paths.root_dir={tmp_path}", arg)
        assert bad.returncode == 1 and match in bad.stderr, (arg, bad.stderr[-500:])
        assert len([line for line in bad.stderr.splitlines() if "error" in line]) == 1
