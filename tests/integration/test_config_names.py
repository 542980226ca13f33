"""Config names: ``model_path`` everywhere a model is loaded, the deprecated keys it replaced, and
config groups split by what composes (LM presets vs classifier modes, corpora vs labelled tasks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CONF, DATA, compose_cfg, run_cli
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from genolm import config_schema as schema
from genolm.utils import report_errors

BASE = ["paths.output_dir=/tmp/out", f"paths.data_dir={DATA}"]
PRIMARIES = sorted(p.stem for p in CONF.glob("*.yaml"))
SCHEMAS = {"pretrain": schema.PretrainConfig, "finetune": schema.FinetuneConfig, "eval": schema.EvalConfig,
           "generate": schema.GenerateConfig, "score": schema.ScoreConfig, "optimize": schema.OptimizeConfig,
           "eval_lm": schema.EvalLMConfig, "interpret": schema.InterpretConfig,
           "embed": schema.EmbedConfig, "benchmark": schema.BenchmarkConfig}
# what else each entrypoint requires besides the model
REQUIRED = {"eval_lm": ["fasta=x"], "interpret": ["input.csv=x"], "embed": ["input.csv=x"]}
# (entrypoint, deprecated key, new key)
RENAMED = [(p, "ckpt_path", "model_path") for p in ("eval", "eval_lm", "generate", "interpret", "score")] + [
    ("finetune", "model.init_from", "model_path"), ("optimize", "oracle.ckpt_path", "model_path"),
    ("optimize", "naturalness.lm_path", "naturalness.model_path")]


def _checked(primary: str, overrides: list[str]) -> DictConfig:
    """Compose ``primary`` and run it through :func:`report_errors` (renames, then the schema)."""
    cfg = compose_cfg(primary, BASE + REQUIRED.get(primary, []) + overrides)
    return report_errors(SCHEMAS[primary])(lambda c: c)(cfg)


def test_every_primary_config_is_covered() -> None:
    assert PRIMARIES == sorted(SCHEMAS)


@pytest.mark.parametrize("primary", PRIMARIES)
def test_model_path_composes_for_every_primary_config(primary: str, capsys: pytest.CaptureFixture) -> None:
    if primary == "pretrain":  # nothing to load: ckpt_path only resumes
        cfg = _checked(primary, ["ckpt_path=null"])
        assert "model_path" not in cfg and cfg.ckpt_path is None
    elif primary == "benchmark":  # many models: name -> model_path
        cfg = _checked(primary, ["backbones={lm: x}"])
        assert "model_path" not in cfg and cfg.backbones.lm == "x"
    else:
        lm = ["naturalness.model_path=y"] if primary == "optimize" else []
        cfg = _checked(primary, ["model_path=x", *lm])
        assert cfg.model_path == "x"
        assert primary != "optimize" or cfg.naturalness.model_path == "y"
    assert "deprecated" not in capsys.readouterr().err


@pytest.mark.parametrize("primary,old,new", RENAMED)
def test_each_deprecated_key_still_works_with_one_line(primary: str, old: str, new: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    extra = ["model_path=x"] if new != "model_path" else []
    cfg = _checked(primary, [f"{old}=some/model", *extra])
    assert OmegaConf.select(cfg, new) == "some/model" and OmegaConf.select(cfg, old) is None
    assert capsys.readouterr().err.splitlines() == [f"genolm: '{old}' is deprecated, use '{new}'"]


def test_old_and_new_key_with_the_same_value_is_one_deprecation_line(capsys: pytest.CaptureFixture) -> None:
    cfg = _checked("eval", ["model_path=a", "ckpt_path=a"])
    assert cfg.model_path == "a"
    assert capsys.readouterr().err.splitlines() == ["genolm: 'ckpt_path' is deprecated, use 'model_path'"]


@pytest.mark.parametrize("primary,old,new", RENAMED)
def test_old_and_new_key_that_differ_are_one_clear_error(primary: str, old: str, new: str,
                                                         capsys: pytest.CaptureFixture) -> None:
    extra = ["model_path=x"] if new != "model_path" else []
    with pytest.raises(SystemExit) as stop:
        _checked(primary, [f"{new}=a", f"{old}=b", *extra])
    assert stop.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"genolm: error: config: both {new}=a and its deprecated name {old}=b are given; give only {new}"]


def test_pretrain_ckpt_path_still_means_resume_and_is_not_renamed(capsys: pytest.CaptureFixture) -> None:
    cfg = _checked("pretrain", ["ckpt_path=last"])
    assert cfg.ckpt_path == "last" and "model_path" not in cfg
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("primary,wrong", [
    ("pretrain", "task=tf0"), ("pretrain", "classifier=lora"), ("finetune", "corpus=hg38"),
    ("finetune", "model=tiny"), ("finetune", "model=classifier_lora"), ("eval", "corpus=hg38"),
    ("eval", "classifier=full")])
def test_a_group_of_another_entrypoint_fails_at_composition(primary: str, wrong: str) -> None:
    with pytest.raises(ConfigCompositionException, match="Could not override"):
        compose_cfg(primary, BASE + [wrong])


@pytest.mark.parametrize("primary,option,use", [
    ("finetune", "tf0", "task=tf0"), ("eval", "tf0", "task=tf0"), ("pretrain", "hg38", "corpus=hg38")])
def test_the_old_data_group_names_the_new_one(primary: str, option: str, use: str,
                                              capsys: pytest.CaptureFixture) -> None:
    """``data`` is still a key, so Hydra takes ``data=tf0`` as a value: one error names the new group."""
    with pytest.raises(SystemExit):
        _checked(primary, [f"data={option}"] + (["model_path=x"] if primary != "pretrain" else []))
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"genolm: error: config: data={option}: the data group was split") and use in line


def test_groups_hold_only_what_composes() -> None:
    assert sorted(p.stem for p in (CONF / "model").glob("*.yaml")) == [
        "_mixtral", "course_105m", "mistral_dna_17m", "mistral_dna_1m", "tiny"]
    assert sorted(p.stem for p in (CONF / "classifier").glob("*.yaml")) == ["full", "lora", "probe"]
    assert not (CONF / "data").exists()
    for group, package in (("classifier", "model"), ("corpus", "data"), ("task", "data")):
        for path in (CONF / group).glob("*.yaml"):
            assert path.read_text().startswith(f"# @package {package}\n"), path


@pytest.mark.subprocess
@pytest.mark.parametrize("cli,wrong,extra", [
    ("genolm-pretrain", "task=tf0", []), ("genolm-finetune", "corpus=hg38", ["model_path=x"])])
def test_cli_with_a_wrong_group_fails_at_composition(tmp_path: Path, cli: str, wrong: str,
                                                     extra: list[str]) -> None:
    res = run_cli(cli, wrong, *extra, f"paths.root_dir={tmp_path}")
    group = wrong.split("=")[0]
    assert res.returncode != 0
    assert f"Could not override '{group}'" in res.stderr and "No match in the defaults list" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "logs").exists()  # no run folder


@pytest.mark.subprocess
def test_cli_deprecated_key_and_conflict(tmp_path: Path) -> None:
    """The old name reaches the code (one deprecation line, then the model is looked for); old and
    new names that disagree stop with one error line and leave no run folder."""
    res = run_cli("genolm-eval", f"ckpt_path={tmp_path}/nope", f"paths.root_dir={tmp_path}",
                  f"paths.data_dir={DATA}")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert lines[0] == "genolm: 'ckpt_path' is deprecated, use 'model_path'"
    assert sum(line.endswith("is deprecated, use 'model_path'") for line in lines) == 1
    assert lines[-1].startswith("genolm: error: ") and f"{tmp_path}/nope" in lines[-1]
    res = run_cli("genolm-eval", "model_path=a", "ckpt_path=b", f"paths.root_dir={tmp_path}/conflict")
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "genolm: error: config: both model_path=a and its deprecated name ckpt_path=b are given; "
        "give only model_path"]
    assert not list((tmp_path / "conflict").rglob("runs/*"))
