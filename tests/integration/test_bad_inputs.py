"""Bad-input catalogue: every entrypoint refuses bad input with one line, exit 1, and leaves nothing.

Each case runs the real console script in a fresh process against a run root of its own and asserts
the exit status, that stderr ends with one ``genolm: error:`` line naming the key or file (no
traceback), and that no run folder (or anything else) was left under ``<root>/logs``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from helpers import CHR22, DATA, MISTRAL_TF0, compose_cfg, run_cli, tiny_overrides, write_fasta

from genolm.pipelines.pretrain import train as pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

YEAST = DATA / "yeast" / "R64-1-1_chrI_X_XIII_softmasked.fa.gz"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny causal LM (HF folder) and a set of broken input files."""
    root = tmp_path_factory.mktemp("bad")
    _, objects = pretrain(compose_cfg("pretrain", tiny_overrides(root / "lm", root / "cache") + [
        "trainer.max_steps=2", "baseline.enabled=false"]))
    full = gzip.compress(b">chr1\n" + b"ACGT" * 200 + b"\n")
    (root / "truncated.fa.gz").write_bytes(full[: len(full) // 2])
    (root / "binary.fa").write_bytes(bytes(range(256)) * 8)
    (root / "binary.csv").write_bytes(bytes(range(128, 256)) * 8)
    write_fasta(root / "genome.fa", {"chr1": "ACGT" * 100})
    (root / "pos.vcf").write_text("chr1\t1x\tv1\tA\tC\n")
    write_fasta(root / "short.fa", {"r1": "ACGTACGT"})
    write_fasta(root / "ref.fa", {"a": "ACGTA", "b": "ACGTA"})
    write_fasta(root / "alt.fa", {"a": "ACTTA"})
    write_fasta(root / "letters.fa", {"r1": "ACGTXACGT" * 30})
    task = root / "task"
    task.mkdir()
    for split in ("train", "dev", "test"):
        (task / f"{split}.csv").write_text("sequence,label\nACGTACGT,0\nACGTQCGT,1\n")
    nolabel = root / "nolabel"
    nolabel.mkdir()
    for split in ("train", "dev", "test"):
        (nolabel / f"{split}.csv").write_text("sequence,class\nACGTACGT,0\n")
    return {"lm": objects["hf_dir"], "tf0": MISTRAL_TF0, "root": root, "yeast": YEAST, "chr22": CHR22}


CASES = [
    # config values: refused before any work, naming the key
    ("lr_not_a_number", "genolm-finetune", ["model_path={tf0}", "model.optimizer.lr=1e-3x"],
     "model.optimizer.lr='1e-3x'"),
    ("batch_size_zero", "genolm-finetune", ["model_path={tf0}", "data.batch_size=0"],
     "data.batch_size=0"),
    ("init_from_unset", "genolm-finetune", [], "required value missing: model_path"),
    ("init_from_missing", "genolm-finetune", ["model_path={root}/nope"], "{root}/nope"),
    ("repetition_penalty_zero", "genolm-generate", ["model_path={lm}", "repetition_penalty=0"],
     "repetition_penalty=0"),
    ("n_zero", "genolm-generate", ["model_path={lm}", "n=0"], "n=0"),
    ("n_negative", "genolm-generate", ["model_path={lm}", "n=-3"], "n=-3"),
    ("top_p_above_one", "genolm-generate", ["model_path={lm}", "top_p=1.5"], "top_p=1.5"),
    ("max_edits_zero", "genolm-optimize", ["model_path={tf0}", "start.random_length=30",
                                          "constraints.max_edits=0"], "constraints.max_edits=0"),
    ("population_zero", "genolm-optimize", ["model_path={tf0}", "start.random_length=30",
                                           "algorithm=genetic", "algorithm.population=0"],
     "algorithm.population=0"),
    ("gc_range_empty", "genolm-optimize", ["model_path={tf0}", "start.random_length=30",
                                          "constraints.gc_range=[0.6,0.4]"], "gc_range [0.6, 0.4] is empty"),
    ("heads_do_not_divide", "genolm-pretrain", ["model=tiny", "model.arch.num_attention_heads=3"],
     "not a multiple of num_attention_heads 3"),
    ("unknown_score", "genolm-score", ["model_path={lm}", "scores=[l2,kl]"], "scores.1='kl'"),
    ("wrong_model_kind", "genolm-score", ["model_path={tf0}", "limit=5"], "not a causal LM"),
    # input files
    ("truncated_gz", "genolm-eval-lm", ["model_path={lm}", "fasta={root}/truncated.fa.gz"],
     "{root}/truncated.fa.gz: truncated"),
    ("binary_fasta", "genolm-eval-lm", ["model_path={lm}", "fasta={root}/binary.fa"],
     "{root}/binary.fa: not text"),
    ("no_window_fits", "genolm-eval-lm", ["model_path={lm}", "fasta={root}/short.fa"], "{root}/short.fa"),
    ("non_acgtn_fasta", "genolm-eval-lm", ["model_path={lm}", "fasta={root}/letters.fa"],
     "invalid letter 'X'"),
    ("vcf_pos_not_integer", "genolm-score", ["model_path={lm}", "vcf={root}/pos.vcf",
                                             "genome={root}/genome.fa"],
     "line 1: POS '1x' is not a positive integer"),
    ("mismatched_pairs", "genolm-score", ["model_path={lm}",
                                          "inputs=[{{ref:{root}/ref.fa,alt:{root}/alt.fa}}]"],
     "{root}/ref.fa"),
    ("binary_csv", "genolm-optimize", ["model_path={tf0}", "start.csv={root}/binary.csv"],
     "{root}/binary.csv: not text"),
    ("csv_bad_letter", "genolm-finetune", ["model_path={tf0}", "data.task_dir={root}/task"],
     "invalid letter 'Q'"),
    ("csv_no_label_column", "genolm-finetune", ["model_path={tf0}", "data.task_dir={root}/nolabel"],
     "missing column(s) ['label']"),
    ("corpus_missing", "genolm-pretrain", ["model=tiny", "data.inputs=[{root}/none.fa]"], "{root}/none.fa"),
    ("all_positions_fixed", "genolm-optimize", ["model_path={tf0}", "start.random_length=4",
                                               "constraints.fixed=[0,1,2,3]"], "all 4 positions are fixed"),
    ("motif_file_missing", "genolm-optimize", ["model_path={tf0}", "start.random_length=30",
                                              "start.n=1", "motifs.path={root}/none.pfm"],
     "{root}/none.pfm: motif file not found"),
]


@pytest.mark.subprocess
@pytest.mark.parametrize("case,cli,args,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(files, tmp_path: Path, case: str, cli: str,
                                                      args: list[str], expected: str) -> None:
    given = {k: str(v) for k, v in files.items()}
    res = run_cli(cli, *[a.format(**given) for a in args], f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}", f"paths.cache_dir={files['root'] / 'cache'}")
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("genolm: error: ") and expected.format(**given) in last, last
    assert "Traceback" not in res.stderr and "HYDRA_FULL_ERROR" not in res.stderr, res.stderr[-3000:]
    assert not (tmp_path / "logs").exists(), sorted(p.name for p in (tmp_path / "logs").rglob("*"))
