"""A toy model that responds to one planted JASPAR PWM: attributions find the site, modisco the motif."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DATA, compose_cfg

from genolm.data.sequences import one_hot
from genolm.interpret.gradients import onehot_integrated_gradients
from genolm.interpret.ism import ism_hypothetical, saturation_mutagenesis
from genolm.interpret.motifs import jaspar_targets
from genolm.interpret.report import write_report
from genolm.pipelines.interpret import motif_outputs

pytestmark = pytest.mark.usefixtures("one_thread")
PLANTED = "REST"  # MA0138.2, 21 b: distinctive among the 838 vertebrate motifs
LENGTH = 100


@pytest.fixture(scope="module")
def targets():
    return jaspar_targets(DATA / "motifs" / "JASPAR2022_vertebrates.pfm",
                          DATA / "motifs" / "JASPAR2022_vertebrates.motif2factors.txt")


@pytest.fixture(scope="module")
def planted(targets):
    """200 random sequences, each with one site sampled from the PFM (either strand), and the toy model."""
    motif = next(t for t in targets if t.name == PLANTED)
    width = len(motif.ppm)
    rng = np.random.default_rng(7)
    seqs, sites = [], []
    for _ in range(200):
        codes = rng.integers(0, 4, LENGTH)
        start = int(rng.integers(0, LENGTH - width))
        site = np.array([rng.choice(4, p=row / row.sum()) for row in motif.ppm])
        codes[start : start + width] = 3 - site[::-1] if rng.random() < 0.5 else site
        seqs.append("".join("ACGT"[c] for c in codes))
        sites.append(start)
    kernel = torch.tensor(np.log2(motif.ppm / 0.25), dtype=torch.float32).T[None]  # (1, 4, w)

    def forward(x: torch.Tensor) -> torch.Tensor:
        """Soft maximum over both strands of the PWM log-odds score (a motif detector)."""
        xs = x.transpose(1, 2)
        fwd = torch.nn.functional.conv1d(xs, kernel)[:, 0]
        rev = torch.nn.functional.conv1d(xs, kernel.flip(1).flip(2))[:, 0]
        return torch.logsumexp(torch.cat([fwd, rev], 1), 1)

    return motif, seqs, np.array(sites), forward


def _mass_on_site(actual: np.ndarray, sites: np.ndarray, width: int) -> np.ndarray:
    inside = np.array([np.abs(a[s : s + width]).sum() for a, s in zip(actual, sites, strict=True)])
    return inside / np.abs(actual).sum((1, 2))


def test_ism_and_ig_put_the_attribution_on_the_planted_site(planted) -> None:
    motif, seqs, sites, forward = planted
    width = len(motif.ppm)
    oh = one_hot(seqs)

    def score(batch: list[str]) -> np.ndarray:
        with torch.no_grad():
            return forward(torch.from_numpy(one_hot(batch))).numpy()

    effects, _ = saturation_mutagenesis(score, seqs[:50], progress=False)
    ism_actual, _ = ism_hypothetical(effects, oh[:50])
    ig_actual, _, delta = onehot_integrated_gradients(forward, oh[:50], steps=32)
    for actual in (ism_actual, ig_actual):
        mass = _mass_on_site(actual, sites[:50], width)
        assert np.median(mass) > 0.8, mass  # 21 of 100 positions hold > 80% (uniform: 21%)
        assert (mass > 0.5).mean() > 0.9
    assert np.abs(delta).max() < 1e-2


@pytest.mark.fit
def test_modisco_recovers_the_planted_motif_and_tomtom_names_it_first(planted, targets, tmp_path) -> None:
    motif, seqs, _, forward = planted

    def score(batch: list[str]) -> np.ndarray:
        with torch.no_grad():
            return forward(torch.from_numpy(one_hot(batch))).numpy()

    effects, _ = saturation_mutagenesis(score, seqs, progress=False)
    oh = one_hot(seqs)
    _, hyp = ism_hypothetical(effects, oh)
    cfg = compose_cfg("interpret", [f"paths.output_dir={tmp_path}", f"paths.data_dir={DATA}",
                                    "model_path=toy", "input.fasta=toy.fa", "modisco.n_leiden_runs=10"])
    info = {"seconds": {}}
    table, images = motif_outputs(oh, hyp, cfg, targets, tmp_path, info)
    best = table[table["rank"] == 1].set_index("pattern")
    assert "pos_0" in best.index and best.loc["pos_0", "n_seqlets"] >= 20
    assert best.loc["pos_0", "motif_id"] == motif.motif_id and best.loc["pos_0", "motif_name"] == PLANTED
    assert best.loc["pos_0", "q_value"] < 1e-6 and best.loc["pos_0", "factors"] == PLANTED
    assert len(best.loc["pos_0", "consensus"]) >= 10
    assert {"pattern": "pos_0", "motif_id": motif.motif_id, "motif_name": PLANTED} in [
        {k: h[k] for k in ("pattern", "motif_id", "motif_name")} for h in info["significant"]]
    written = pd.read_csv(tmp_path / "motifs.tsv", sep="\t")
    assert len(written) == len(table) and set(written["rank"]) == {1, 2, 3}
    for name, image in images.items():
        assert (tmp_path / image).stat().st_size > 5000 and image == f"logos/motif_{name}.png"
    info.update(kind="classifier", score="toy", sequences=len(seqs), bases=len(seqs) * LENGTH,
                reference_mean=0.0)
    cfg.methods = ["ism"]
    write_report(tmp_path / "report.md", cfg, info, table, [], images)
    report = (tmp_path / "report.md").read_text()
    assert f"pos_0 -> {motif.motif_id} {PLANTED}" in report and "](logos/motif_pos_0.png)" in report
