"""Pretraining: ``train(cfg)`` builds data, tokenizer, model and trainer from a Hydra config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from genolm.baselines.compare import lm_vs_markov, write_report
from genolm.checkpoints import load_causal_lm_module
from genolm.config_schema import PretrainConfig
from genolm.export import export_hf
from genolm.io import write_json_atomic
from genolm.models.mixtral import count_parameters
from genolm.training.resume import check_same_shapes, resolve_ckpt_path, with_sigterm_checkpoint
from genolm.training.trainer import build_trainer, job_scope
from genolm.utils import config_dir, instantiate_group, instantiate_loggers, report_errors, to_floats

log = logging.getLogger("genolm.pipelines.pretrain")


def build(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate datamodule (corpus + tokenizer + token cache), model, callbacks and trainer."""
    datamodule = instantiate(cfg.data, tokenizer=instantiate(cfg.tokenizer))
    tok = datamodule.prepare()
    model = instantiate(cfg.model, vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, fast=cfg.fast)
    model.tokenizer = tok
    datamodule.check_fits(model.config.max_position_embeddings)
    callbacks = with_sigterm_checkpoint(instantiate_group(cfg.get("callbacks")))
    loggers = instantiate_loggers(cfg.get("logger"), cfg)
    trainer = build_trainer(cfg, callbacks, loggers, micro_batch=datamodule.batch_size)
    return {"datamodule": datamodule, "model": model, "trainer": trainer, "tokenizer": tok}


def _best_module(trainer: L.Trainer, model):
    """The best checkpoint's module if one was written, else the in-memory model."""
    ckpt = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    if ckpt is not None and ckpt.best_model_path:
        return load_causal_lm_module(ckpt.best_model_path), ckpt.best_model_path
    return model, None


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Pretrain a causal DNA LM; write checkpoints, ``metrics.json`` and an ``hf/`` export.

    Args:
        cfg: composed ``conf/pretrain.yaml``.

    Returns:
        ``(metrics, objects)``: final metrics as floats, and the datamodule, model, trainer,
        tokenizer, best checkpoint path, the checkpoint resumed from, the ``hf/`` folder and
        (with ``baseline.enabled``) the LM-vs-Markov comparison of :func:`compare_with_markov`.

    ``ckpt_path``: see :func:`genolm.training.resume.resolve_ckpt_path` (``last``, a file, or ``null``,
    which still resumes a requeued job from its own folder's checkpoint).

    """
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    objects = build(cfg)
    model, trainer, datamodule = objects["model"], objects["trainer"], objects["datamodule"]
    log.info("model: %s parameters; data: %s", f"{count_parameters(model):,}", datamodule.summary())
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), out_dir, Path(cfg.paths.log_dir) / cfg.task_name)
    if ckpt_path:
        check_same_shapes(ckpt_path, model)
    with job_scope(trainer) as final:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics = to_floats(trainer.callback_metrics)
        best, best_path = _best_module(trainer, model)
        objects.update(best_ckpt=best_path, resumed_from=ckpt_path)
        if cfg.get("export_hf") and trainer.is_global_zero:
            objects["hf_dir"] = export_hf(best.net, best.tokenizer, out_dir / "hf", replace=True)
        if trainer.is_global_zero and cfg.get("baseline") and cfg.baseline.enabled:
            objects["baseline"] = compare_with_markov(cfg, best, model, datamodule, trainer)
            metrics.update({k: objects["baseline"][k] for k in BASELINE_KEYS})
        if trainer.is_global_zero:
            write_json_atomic(out_dir / "metrics.json", {
                "metrics": metrics, "best_ckpt": best_path, "global_step": trainer.global_step,
                "resumed_from": ckpt_path, "parameters": count_parameters(model),
                "data": datamodule.summary()})
        final.update(metrics)
    return metrics, objects


BASELINE_KEYS = ("val/bits_per_base_windows", "baseline/markov_bits_per_base", "baseline/markov_order",
                 "baseline/markov_both_strands")


def compare_with_markov(cfg: DictConfig, best, model, datamodule, trainer: L.Trainer) -> dict[str, Any]:
    """Score the validation chunks alone with the best LM and with Markov chains; write the report.

    The chains are fitted on the training chunks of the same corpus. Writes
    ``lm_vs_baselines.{md,tsv}`` and ``learning_curve.png`` in the run folder and logs
    ``val/bits_per_base_windows``, ``baseline/markov_bits_per_base`` and its order.
    """
    corpus = Path(datamodule.corpus_dir)
    read = lambda split: (corpus / f"{split}.txt").read_text().split()  # noqa: E731
    log.info("baselines: scoring %s/val.txt with the LM and Markov chains of order 0-%d",
             corpus, cfg.baseline.max_order)
    result = lm_vs_markov(best.net, best.tokenizer, read("train"), read("val"), cfg.baseline.max_order,
                          cfg.baseline.alpha, start="sep" if datamodule.packing else "bos",
                          batch_size=datamodule.eval_batch_size)
    result.update({"val/bits_per_base_windows": result["lm_bits_per_base"],
                   "baseline/markov_bits_per_base": result["markov_bits_per_base"],
                   "baseline/markov_order": float(result["best_order"]),
                   "baseline/markov_both_strands": float(result["best_strands"] == "both")})
    write_report(cfg.paths.output_dir, result, f"{cfg.task_name}: LM vs Markov chains",
                 f"Validation chunks of `{corpus}`, each scored alone; best checkpoint.", model.curve)
    for logger in trainer.loggers:
        logger.log_metrics({k: result[k] for k in BASELINE_KEYS}, step=trainer.global_step)
        logger.save()
    return result


def format_summary(metrics: dict[str, float], objects: dict[str, Any]) -> str:
    """Human-readable end-of-run lines."""
    lines = [f"val/loss {metrics.get('val/loss', float('nan')):.4f}  "
             f"val/ppl {metrics.get('val/ppl', float('nan')):.3f}  "
             f"val/bits_per_base {metrics.get('val/bits_per_base', float('nan')):.4f}"]
    base = objects.get("baseline")
    if base:
        verdict = "below" if base["delta"] < 0 else "above"
        strands = "both strands" if base["best_strands"] == "both" else "one strand"
        lines.append(f"held-out windows: LM {base['lm_bits_per_base']:.4f} bits/base, best Markov chain "
                     f"(order {base['best_order']}, fitted on {strands}) {base['markov_bits_per_base']:.4f}: "
                     f"the LM is {abs(base['delta']):.4f} {verdict} it (lm_vs_baselines.md)")
    if objects.get("best_ckpt"):
        lines.append(f"best checkpoint: {objects['best_ckpt']}")
    if objects.get("hf_dir"):
        lines.append(f"Hugging Face folder: {objects['hf_dir']}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="pretrain")
@report_errors(PretrainConfig)
def main(cfg: DictConfig) -> float | None:
    """Pretrain and print the summary; returns the optimized metric for sweepers."""
    metrics, objects = train(cfg)
    if objects["trainer"].is_global_zero:
        print(format_summary(metrics, objects))
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
