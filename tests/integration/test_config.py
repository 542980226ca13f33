"""Hydra composition: every experiment composes, every preset builds to its documented size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import CONF, DATA, REPO, compose_cfg, run_cli
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genolm import config_schema as schema
from genolm.errors import GenolmError
from genolm.models.mixtral import count_parameters

BASE = ["paths.output_dir=/tmp/out", f"paths.data_dir={DATA}"]
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
PRIMARY = {"demo_finetune": "finetune", "demo_generate": "generate"}
# experiments on data the user downloads (data/README.md says where): files not shipped
DOWNLOADED = {"pretrain_hg38_full": ["hg38/hg38.fa.gz"]}
SCHEMAS = {"pretrain": schema.PretrainConfig, "finetune": schema.FinetuneConfig, "eval": schema.EvalConfig,
           "generate": schema.GenerateConfig, "score": schema.ScoreConfig, "optimize": schema.OptimizeConfig,
           "eval_lm": schema.EvalLMConfig, "interpret": schema.InterpretConfig,
           "embed": schema.EmbedConfig}
REQUIRED = {"finetune": ["model_path=x"], "eval": ["model_path=x"], "generate": ["model_path=x"],
            "score": ["model_path=x"], "optimize": ["model_path=x"],
            "eval_lm": ["model_path=x", "fasta=x"], "interpret": ["model_path=x", "input.csv=x"],
            "embed": ["model_path=x", "input.csv=x"]}
# each group holds only options its entrypoints can use, so every shipped option composes
GROUP_OPTIONS = [(primary, group, p.stem) for primary, groups in {
    "pretrain": ("model", "tokenizer", "trainer", "corpus"), "finetune": ("classifier", "task", "trainer"),
    "eval": ("task",), "optimize": ("algorithm",)}.items() for group in groups
    for p in sorted((CONF / group).glob("*.yaml")) if not p.stem.startswith("_")]


@pytest.mark.parametrize("primary", sorted(SCHEMAS))
def test_every_primary_config_passes_its_schema(primary: str) -> None:
    schema.validate(compose_cfg(primary, BASE + REQUIRED.get(primary, [])), SCHEMAS[primary])


@pytest.mark.parametrize("primary,group,option", GROUP_OPTIONS)
def test_every_shipped_option_passes_the_schema(primary: str, group: str, option: str) -> None:
    extra = ["data.name=x", "data.task_dir=x"] if option == "gue" else []
    cfg = compose_cfg(primary, BASE + REQUIRED.get(primary, []) + [f"{group}={option}", *extra])
    schema.validate(cfg, SCHEMAS[primary])


@pytest.mark.parametrize("primary", sorted(SCHEMAS))
def test_fast_key_in_every_primary_config(primary: str) -> None:
    """``fast: auto | true | false`` (genolm.models.fast.switch); anything else is one clear error."""
    base = BASE + REQUIRED.get(primary, [])
    assert compose_cfg(primary, base).fast == "auto"
    for good in ("true", "false"):
        schema.validate(compose_cfg(primary, [*base, f"fast={good}"]), SCHEMAS[primary])
    message = r"^config: fast='sometimes': Input should be 'auto', 'true' or 'false'$"
    with pytest.raises(GenolmError, match=message):
        schema.validate(compose_cfg(primary, [*base, "fast=sometimes"]), SCHEMAS[primary])


def test_schema_names_every_bad_key_at_once() -> None:
    cfg = compose_cfg("finetune", BASE + ["model_path=x", "data.batch_size=-1", "model.optimizer.lr=0"])
    with pytest.raises(GenolmError) as err:
        schema.validate(cfg, schema.FinetuneConfig)
    assert "data.batch_size=-1" in str(err.value) and "model.optimizer.lr=0" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_resolves(name: str) -> None:
    primary = PRIMARY.get(name, "pretrain")
    extra = {"finetune": ["model_path=x"], "generate": ["model_path=x"]}.get(primary, [])
    cfg = compose_cfg(primary, BASE + [f"experiment={name}"] + extra)
    schema.validate(cfg, SCHEMAS[primary])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if primary == "generate":
        files = resolved["report"]["reference_fasta"] + resolved["report"]["train_fasta"]
    else:
        module = "CausalLMModule" if primary == "pretrain" else "SequenceClassifierModule"
        assert resolved["model"]["_target_"].endswith(module)
        files = resolved["data"].get("inputs") or [resolved["data"]["train"], resolved["data"]["test"]]
    downloaded = [str(DATA / f) for f in DOWNLOADED.get(name, [])]
    assert all(Path(p).is_file() for p in files if p not in downloaded)
    assert set(downloaded) <= set(files)
    header = (CONF / "experiment" / f"{name}.yaml").read_text().splitlines()[:8]
    assert header[0] == "# @package _global_"
    assert any(f"experiment={name}" in line for line in header)  # run command documented


def test_defaults_order_and_required_slots() -> None:
    text = (CONF / "pretrain.yaml").read_text()
    assert text.index("- _self_") < text.index("- corpus:") < text.index("- experiment: null")
    assert "- hparams_search: null" in text
    cfg = compose_cfg("pretrain", BASE + ["hparams_search=pretrain_lr"], hydra=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.hydra.sweeper.params["model.optimizer.lr"] == "2.0e-3,1.0e-3,5.0e-4"


@pytest.mark.parametrize("preset,params", [
    ("tiny", None), ("mistral_dna_1m", 985_664), ("mistral_dna_17m", 16_797_952),
    ("course_105m", 104_993_024)])
def test_model_presets(preset: str, params: int | None) -> None:
    cfg = compose_cfg("pretrain", BASE + [f"model={preset}"])
    module = instantiate(cfg.model, vocab_size=4096, pad_token_id=3, bos_token_id=1, eos_token_id=2)
    if params is not None:
        assert count_parameters(module.net) == params
    assert module.config.num_experts_per_tok == 1
    assert module.config.router_aux_loss_coef == pytest.approx(0.02)
    assert isinstance(module.hparams.arch, dict)  # plain data: checkpoints load without Hydra


def test_course_105m_matches_course_config() -> None:
    import json

    course = json.loads((DATA / "models" / "Mixtral-8x7B-v0.1-dna-config" / "config.json").read_text())
    cfg = compose_cfg("pretrain", BASE + ["model=course_105m"])
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "num_local_experts", "num_experts_per_tok",
                "max_position_embeddings", "rope_theta"):
        assert cfg.model.arch[key] == course[key], key


@pytest.mark.subprocess
def test_unknown_preset_is_one_clear_error(tmp_path: Path) -> None:
    res = run_cli("genolm-pretrain", "model=nope", f"paths.root_dir={tmp_path}")
    assert res.returncode != 0
    assert "model/nope" in res.stderr or "'nope'" in res.stderr
    assert "Traceback" not in res.stderr


TASK_CONFIGS = sorted(p.stem for p in (CONF / "task").glob("[!_]*.yaml") if p.stem != "gue")


@pytest.mark.parametrize("name", TASK_CONFIGS)
def test_every_task_config_loads_real_data(name: str) -> None:
    cfg = compose_cfg("finetune", BASE + [f"task={name}", "model_path=x"])
    datamodule = instantiate(cfg.data)
    frames = datamodule.load()
    assert {"train", "val", "test"} <= set(frames)
    assert all(frames[s]["label"].nunique() == datamodule.num_labels for s in ("train", "val", "test"))
    train_ids, val_ids = set(frames["train"]["id"]), set(frames["val"]["id"])
    assert not train_ids & val_ids


def test_gue_data_root_override_makes_any_folder_a_task(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.csv").write_text("sequence,label\n" + "ACGTAC,1\nTTGACA,0\n" * 5)
    cfg = compose_cfg("finetune", BASE + ["task=gue", "data.name=mine", f"data.task_dir={tmp_path}",
                                          "model_path=x"])
    frames = instantiate(cfg.data).load()
    assert [len(frames[s]) for s in ("train", "val", "test")] == [10, 10, 10]


@pytest.mark.subprocess
def test_a_regular_install_ships_every_config(tmp_path: Path) -> None:
    """Build the wheel, unpack it, and find and compose the configs from the unpacked package alone."""
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "conf", src / "conf")
    shutil.copytree(REPO / "src", src / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("genolm-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    shipped = {p.relative_to(site / "genolm" / "conf") for p in (site / "genolm" / "conf").rglob("*.yaml")}
    assert shipped == {p.relative_to(CONF) for p in CONF.rglob("*.yaml")}
    probe = ("import genolm, genolm.utils as u; from hydra import compose, initialize_config_dir\n"
             "with initialize_config_dir(config_dir=u.config_dir(), version_base='1.3'):\n"
             "    cfg = compose(config_name='pretrain', overrides=['experiment=demo'])\n"
             "print(genolm.__file__, u.config_dir(), cfg.task_name)")
    env = {k: v for k, v in os.environ.items() if k != "GENOLM_CONFIG_DIR"}
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path).stdout.split()
    assert out == [str(site / "genolm" / "__init__.py"), str(site / "genolm" / "conf"), "demo"]


def test_weighted_corpus_inputs_pass_the_schema() -> None:
    good = "data.inputs=[/a/human.fa,{path:/a/yeast.fa,weight:0.2}]"
    cfg = compose_cfg("pretrain", BASE + [good])
    schema.validate(cfg, schema.PretrainConfig)
    assert OmegaConf.to_container(cfg.data.inputs) == ["/a/human.fa", {"path": "/a/yeast.fa", "weight": 0.2}]
    with pytest.raises(GenolmError, match="data.inputs.0"):
        schema.validate(compose_cfg("pretrain", BASE + ["data.inputs=[{path:/a/y.fa,weight:2}]"]),
                        schema.PretrainConfig)
