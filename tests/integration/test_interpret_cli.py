"""``genolm-interpret`` end to end: the shipped tf0 classifier, a causal LM, and bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import CONF, DATA, MISTRAL_TF0, tiny_mixtral, write_fasta
from transformers import MixtralForCausalLM

from genolm.data.labeled import read_labeled_csv

TF0_TEST = DATA / "GUE" / "tf" / "0" / "test.csv"


def interpret(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the ``genolm-interpret`` console script of this environment."""
    cmd = [str(Path(sys.executable).parent / "genolm-interpret")]
    env = {"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "GENOLM_CONFIG_DIR": str(CONF)}
    return subprocess.run([*cmd, *args, f"paths.root_dir={cwd}", f"paths.data_dir={DATA}", "progress=false"],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, **env}, timeout=900)


@pytest.mark.subprocess
def test_cli_on_the_shipped_tf0_classifier_writes_every_output(tmp_path: Path) -> None:
    res = interpret(f"model_path={MISTRAL_TF0}", f"input.csv={TF0_TEST}", "input.label=1", "input.n=5",
                    "logos.n=2", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "run"
    ism = np.load(out / "ism.npz")
    assert ism["effects"].shape == (5, 4, 101) and list(ism["bases"]) == list("ACGT")
    seqs = read_labeled_csv(TF0_TEST).query("label == 1")["sequence"].tolist()[:5]
    assert list(ism["sequences"]) == seqs
    attr = np.load(out / "attributions.npz")
    assert attr["ism_hypothetical"].shape == (5, 101, 4) and attr["ig_per_base"].shape == (5, 101)
    assert "ig_hypothetical" not in attr  # BPE tokenizer: embedding-level IG only
    assert np.abs(attr["ig_per_base"]).sum() > 0 and np.abs(attr["ism_actual"]).sum() > 0
    table = pd.read_csv(out / "motifs.tsv", sep="\t")
    assert "q_value" in table.columns and "factors" in table.columns
    report = (out / "report.md").read_text()
    assert "## Motifs" in report and "mutants/s" in report
    logos = sorted(p.name for p in (out / "logos").glob("seq*.png"))
    assert len(logos) == 2 and all(f"]({'logos/' + name})" in report for name in logos)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sequences"] == 5 and metrics["ig_formulation"] == "input embeddings"
    assert "sequences (505 bases) explained" in res.stdout


@pytest.mark.subprocess
def test_cli_runs_ism_for_a_causal_lm(tmp_path: Path) -> None:
    model, tok = tiny_mixtral(MixtralForCausalLM)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    write_fasta(tmp_path / "in.fa", {"a": "ACGTTGCAGGATCCAT", "b": "TTGACCAGT"})
    res = interpret(f"model_path={tmp_path / 'lm'}", f"input.fasta={tmp_path / 'in.fa'}", "methods=[ism]",
                    "modisco.enabled=false", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ism = np.load(tmp_path / "run" / "ism.npz")
    assert ism["effects"].shape == (2, 4, 16) and np.all(ism["effects"][1, :, 9:] == 0)
    with torch.no_grad():
        ids = torch.tensor([tok("TTGACCAGT")["input_ids"]])
        logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        expected = logp.gather(-1, ids[0, 1:, None]).sum()
    assert ism["reference"][1] == pytest.approx(float(expected), abs=1e-4)
    assert "total log-likelihood" in (tmp_path / "run" / "report.md").read_text()
    res = interpret(f"model_path={tmp_path / 'lm'}", f"input.fasta={tmp_path / 'in.fa'}", "methods=[ism,ig]",
                    f"hydra.run.dir={tmp_path}/run2", cwd=tmp_path)
    assert res.returncode == 1 and "integrated gradients need a classifier" in res.stderr.splitlines()[-1]


BAD = [
    ("unset_ckpt", [], "required value missing: model_path"),
    ("no_input", ["model_path={tf0}"], "set exactly one of input.fasta and input.csv"),
    ("unknown_method", ["model_path={tf0}", "input.csv={csv}", "methods=[ism,shap]"], "methods.1='shap'"),
    ("modisco_scores_not_computed", ["model_path={tf0}", "input.csv={csv}", "methods=[ig]"],
     "modisco.scores=ism needs 'ism' in methods"),
    ("missing_csv", ["model_path={tf0}", "input.csv={tmp}/none.csv"], "{tmp}/none.csv: split file not found"),
    ("missing_model", ["model_path={tmp}/nomodel", "input.csv={csv}"], "{tmp}/nomodel"),
    ("missing_motifs", ["model_path={tf0}", "input.csv={csv}", "tomtom.motifs={tmp}/none.pfm"],
     "{tmp}/none.pfm: motif file not found"),
    ("too_long", ["model_path={tf0}", "input.fasta={tmp}/long.fa"],
     "sequence 'long' (3000 b) tokenizes to"),
    ("bad_letter", ["model_path={tf0}", "input.fasta={tmp}/letters.fa"], "invalid letter 'X'"),
    ("ig_scores_need_single_base", ["model_path={tf0}", "input.csv={csv}", "modisco.scores=ig"],
     "modisco.scores=ig needs hypothetical contributions"),
    ("label_filters_everything", ["model_path={tf0}", "input.csv={csv}", "input.label=7"],
     "no sequences left (input.label=7)"),
]


@pytest.mark.subprocess
@pytest.mark.parametrize("case,args,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_line(tmp_path: Path, case: str, args: list[str], expected: str) -> None:
    rng = np.random.default_rng(0)
    write_fasta(tmp_path / "long.fa", {"long": "".join(rng.choice(list("ACGT"), 3000))})
    write_fasta(tmp_path / "letters.fa", {"r1": "ACGTXACGT"})
    given = {"tf0": str(MISTRAL_TF0), "csv": str(TF0_TEST), "tmp": str(tmp_path)}
    res = interpret(*[a.format(**given) for a in args], cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("genolm: error: ") and expected.format(**given) in last, last
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert not (tmp_path / "logs").exists(), sorted(p.name for p in (tmp_path / "logs").rglob("*"))
