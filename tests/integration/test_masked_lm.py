"""Masked LMs (BERT, ESM) everywhere a model loads: kinds, masked-marginal scoring, finetune, eval, CLI.

Tiny random masked-LM folders are written with ``save_pretrained``; nothing is downloaded:
``BertForMaskedLM`` with one token per base, ``EsmForMaskedLM`` with a Nucleotide-Transformer-like
``EsmTokenizer`` (6-mers, then single bases; a Python tokenizer) and ``BertForMaskedLM`` with a
BPE trained here.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DATA, compose_cfg, run_cli
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForMaskedLM, EsmConfig, EsmForMaskedLM, EsmTokenizer

from genolm.checkpoints import (
    classifier_from_pretrained,
    hf_kind,
    lm_kind,
    load_causal_lm,
    load_classifier,
    load_masked_lm,
)
from genolm.data.tokenizers import BASES, SPECIAL_TOKENS, char, wrap_tokenizer
from genolm.errors import GenolmError
from genolm.models.fast.switch import fast_enabled, use_fast
from genolm.modules.classifier import SequenceClassifierModule
from genolm.pipelines.finetune import train
from genolm.scoring.masked import masked_rows, score_masked_variants, variant_span
from genolm.scoring.variants import read_fasta_pairs

SNP = DATA / "SNP"
# the code a model folder ships with it (as DNABERT-2 does), for a model type transformers lacks
CUSTOM_CODE = """from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification


class TinyDnaConfig(BertConfig):
    model_type = "genolm-test-dna"


class TinyDnaForMaskedLM(BertForMaskedLM):
    config_class = TinyDnaConfig


class TinyDnaForSequenceClassification(BertForSequenceClassification):
    config_class = TinyDnaConfig
"""
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=256, initializer_range=0.2)


def tiny_bpe(seqs: list[str], vocab_size: int = 48):
    """A BPE tokenizer trained on ``seqs`` with genolm's special tokens and [CLS] ... [SEP]."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(seqs, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                                      initial_alphabet=BASES, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return wrap_tokenizer(tok)


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return read_fasta_pairs(SNP / "SNPexon_ref_201b.fasta.gz", SNP / "SNPexon_alt_201b.fasta.gz",
                            "exon", limit=8)


def kmer_tokenizer(folder: Path) -> EsmTokenizer:
    """An ``EsmTokenizer`` over all 6-mers and single bases, as the Nucleotide Transformer's."""
    folder.mkdir(parents=True)
    kmers = ["".join(k) for k in itertools.product("ACGT", repeat=6)]
    specials = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    (folder / "vocab.txt").write_text("\n".join(specials + kmers + list("ACGTN")) + "\n")
    return EsmTokenizer(str(folder / "vocab.txt"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, pairs) -> dict[str, Path]:
    """``bert`` (single base), ``esm`` (6-mers) and ``bert_bpe`` masked-LM folders, plus a headless one."""
    root = tmp_path_factory.mktemp("mlm")
    torch.manual_seed(0)
    toks = {"bert": char(), "esm": kmer_tokenizer(root / "vocab"),
            "bert_bpe": tiny_bpe(pairs["ref"].tolist())}
    for name, tok in toks.items():
        if name == "esm":
            model = EsmForMaskedLM(EsmConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                             mask_token_id=tok.mask_token_id,
                                             position_embedding_type="rotary", **SIZES))
        else:
            model = BertForMaskedLM(BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **SIZES))
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    headless = root / "headless"
    headless.mkdir()
    config = json.loads((root / "bert" / "config.json").read_text())
    (headless / "config.json").write_text(json.dumps({**config, "architectures": ["BertModel"]}))
    return {name: root / name for name in (*toks, "headless")}


def test_kinds_and_wrong_kind_errors(folders) -> None:
    assert hf_kind(folders["bert"]) == "masked_lm" and lm_kind(folders["esm"]) == "masked_lm"
    with pytest.raises(GenolmError, match="declares a masked LM .*not a causal LM"):
        load_causal_lm(folders["bert"])
    with pytest.raises(GenolmError, match="declares a masked LM .*not a sequence classifier"):
        load_classifier(folders["bert"])
    with pytest.raises(GenolmError, match="declares a sequence classifier .*not a masked LM"):
        load_masked_lm(DATA / "models" / "Mistral-DNA-v1-1M-hg38-finetuned-tf0")
    with pytest.raises(GenolmError, match="unknown architecture"):
        classifier_from_pretrained(folders["headless"], 2)
    with pytest.raises(GenolmError, match="no known model head"):
        lm_kind(folders["headless"])


def test_hub_id_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    for load in (load_masked_lm, load_causal_lm, load_classifier):
        with pytest.raises(GenolmError) as err:
            load("genolm-tests/no-such-model", trust_remote_code=True)
        message = str(err.value)
        assert message.startswith("genolm-tests/no-such-model: no such local path, and as a Hugging Face Hub "
                                  "id: not in the local Hugging Face cache") and "\n" not in message
    with pytest.raises(GenolmError, match="neither a genolm .ckpt file nor a Hugging Face folder"):
        load_masked_lm("/no/such/folder")  # not a Hub id: the usual line


def test_trust_remote_code_is_needed_and_honoured(tmp_path: Path, folders) -> None:
    folder = tmp_path / "own_code"
    shutil.copytree(folders["bert"], folder)
    (folder / "custom_dna.py").write_text(CUSTOM_CODE)
    config = json.loads((folder / "config.json").read_text())
    classes = {"AutoConfig": "TinyDnaConfig", "AutoModelForMaskedLM": "TinyDnaForMaskedLM",
               "AutoModelForSequenceClassification": "TinyDnaForSequenceClassification"}
    (folder / "config.json").write_text(json.dumps({
        **config, "model_type": "genolm-test-dna", "architectures": ["TinyDnaForMaskedLM"],
        "auto_map": {auto: f"custom_dna.{cls}" for auto, cls in classes.items()}}))
    with pytest.raises(GenolmError, match="ships its own code .*set trust_remote_code=true"):
        load_masked_lm(folder)
    model, _ = load_masked_lm(folder, trust_remote_code=True)
    assert type(model).__name__ == "TinyDnaForMaskedLM"
    first = SequenceClassifierModule(init_from=str(folder), num_labels=2, trust_remote_code=True)
    assert type(first.net).__name__ == "TinyDnaForSequenceClassification"
    # a checkpoint rebuilds the network from its stored config and the folder's code
    again = SequenceClassifierModule(init_from=str(folder), hf_config=first.hparams.hf_config,
                                     trust_remote_code=True)
    again.load_state_dict(first.state_dict())
    with pytest.raises(GenolmError, match="runs the model code of .*set trust_remote_code=true"):
        SequenceClassifierModule(init_from=str(folder), hf_config=first.hparams.hf_config)


def test_fast_path_leaves_masked_lms_alone(folders) -> None:
    model, _ = load_masked_lm(folders["bert"])
    before = model.config._attn_implementation
    assert use_fast(model, "true") is False and not fast_enabled(model)
    assert model.config._attn_implementation == before


def test_variant_span_and_masked_rows() -> None:
    assert variant_span([1, 5, 6, 7, 2], [1, 5, 8, 7, 2]) == (2, 3, 3)  # a substitution
    assert variant_span([1, 5, 6, 6, 2], [1, 5, 6, 2]) == (3, 4, 3)  # a deletion: empty alt span
    assert variant_span([1, 5, 2], [1, 5, 2]) == (3, 3, 3)
    ref_in, alt_in, ref_span, alt_span, start = masked_rows([1, 5, 6, 7, 2], [1, 9, 9, 9, 7, 2], 4)
    assert (ref_in, alt_in, ref_span, alt_span, start) == ([1, 4, 4, 7, 2], [1, 4, 4, 4, 7, 2], [5, 6],
                                                           [9, 9, 9], 1)


def test_masked_marginal_llr_matches_hand_computation(folders, pairs) -> None:
    model, tok = load_masked_lm(folders["bert"])
    out = score_masked_variants(model, tok, pairs["ref"], pairs["alt"], batch_size=3, progress=False)
    for i in range(len(pairs)):
        ref, alt = tok(pairs["ref"][i])["input_ids"], tok(pairs["alt"][i])["input_ids"]
        (pos,) = [t for t in range(len(ref)) if ref[t] != alt[t]]  # one base = one token
        masked = list(ref)
        masked[pos] = tok.mask_token_id
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([masked])).logits[0, pos], -1)
        assert out["llr"][i] == pytest.approx(float(logp[alt[pos]] - logp[ref[pos]]), abs=1e-4)
        assert out["ref_ll"][i] == pytest.approx(float(logp[ref[pos]]), abs=1e-4)
    assert (out["l2"] > 0).all() and list(out.columns) == ["id", "group", "l2", "cosine", "llr", "ref_ll"]


@pytest.mark.parametrize("name", ["esm", "bert_bpe"])
def test_multi_base_span_score_and_identical_pairs(folders, pairs, name: str) -> None:
    model, tok = load_masked_lm(folders[name])
    same = score_masked_variants(model, tok, pairs["ref"], pairs["ref"], progress=False)
    assert np.allclose(same[["l2", "cosine", "llr"]], 0, atol=1e-5)
    out = score_masked_variants(model, tok, pairs["ref"], pairs["alt"], progress=False)
    for i in range(len(pairs)):
        ref, alt = tok(pairs["ref"][i])["input_ids"], tok(pairs["alt"][i])["input_ids"]
        start, r_end, a_end = variant_span(ref, alt)
        assert r_end > start and ref[:start] == alt[:start] and ref[r_end:] == alt[a_end:]
        r_in, a_in, r_span, a_span, _ = masked_rows(ref, alt, tok.mask_token_id)
        lls = []
        for row, span in ((r_in, r_span), (a_in, a_span)):
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([row])).logits[0], -1)
            lls.append(sum(float(logp[start + j, t]) for j, t in enumerate(span)))
        assert out["llr"][i] == pytest.approx(lls[1] - lls[0], abs=1e-3)


def test_lora_and_probe_train_what_they_should(folders) -> None:
    from genolm.models.classifier import apply_mode, lora_targets

    for name, targets in (("bert", ["query", "value"]), ("esm", ["query", "key", "value"])):
        net, _ = classifier_from_pretrained(folders[name], 2)
        assert lora_targets(net, ["q_proj", "k_proj"]) == targets
        wrapped = apply_mode(net, "lora", {"target_modules": ["q_proj"]})
        trainable = [k for k, p in wrapped.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in k or "classifier" in k for k in trainable)
        probe, _ = classifier_from_pretrained(folders[name], 2)
        apply_mode(probe, "probe")
        assert {k.split(".")[0] for k, p in probe.named_parameters() if p.requires_grad} == {"classifier"}


def _finetune(out: Path, folder: Path, *extra: str):
    cfg = compose_cfg("finetune", [
        f"paths.output_dir={out}", f"paths.data_dir={DATA}", "logger=csv", "task=tf0",
        f"model_path={folder}", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
        "data.limit_train=128", "data.batch_size=32", "trainer.max_steps=2", "strand=forward", *extra])
    return train(cfg)


@pytest.mark.fit
def test_probe_finetune_trains_only_the_head(tmp_path: Path, folders) -> None:
    _, objects = _finetune(tmp_path, folders["bert"], "classifier=probe")
    net = objects["model"].net
    trained = {k for k, p in net.named_parameters() if p.requires_grad}
    assert trained == {"classifier.weight", "classifier.bias"}
    loaded = BertForMaskedLM.from_pretrained(folders["bert"]).bert.state_dict()  # the pretrained backbone
    after = net.bert.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in loaded.items())
    assert objects["trainer"].global_step == 2


@pytest.mark.fit
def test_lora_finetune_of_esm_kmer_model_reloads(tmp_path: Path, folders) -> None:
    _, objects = _finetune(tmp_path, folders["esm"], "classifier=lora", "data.limit_train=64")
    module = objects["model"].eval()
    assert type(module.tokenizer).__name__ == "EsmTokenizer"
    reloaded = load_classifier(objects["best_ckpt"], 2).eval()  # config + tokenizer from the .ckpt
    assert type(reloaded.tokenizer).__name__ == "EsmTokenizer"
    batch = reloaded.tokenizer(["ACGTTGCAAGTCCAGTTTGACCATGGCA", "GGGCCCATATATCG"], padding=True,
                               return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(reloaded(batch["input_ids"], batch["attention_mask"]),
                              module(batch["input_ids"], batch["attention_mask"]), atol=1e-6)


@pytest.mark.subprocess
def test_finetune_checkpoint_reloads_with_genolm_eval(tmp_path: Path, folders) -> None:
    metrics, objects = _finetune(tmp_path / "ft", folders["bert"])
    assert objects["best_ckpt"] and 0 <= metrics["test/auroc"] <= 1
    res = run_cli("genolm-eval", f"model_path={objects['best_ckpt']}", "task=tf0", "strand=forward",
                  f"paths.output_dir={tmp_path / 'ev'}", f"paths.data_dir={DATA}",
                  "trainer.enable_progress_bar=false")
    assert res.returncode == 0, res.stderr[-3000:]
    first = pd.read_csv(tmp_path / "ft" / "predictions_test.tsv", sep="\t")
    again = pd.read_csv(tmp_path / "ev" / "predictions_test.tsv", sep="\t")
    assert len(first) == 1000 and (first["id"] == again["id"]).all()
    assert np.allclose(first[["prob_0", "prob_1"]], again[["prob_0", "prob_1"]], atol=1e-5)


@pytest.mark.subprocess
def test_score_cli_with_masked_lm(tmp_path: Path, folders) -> None:
    res = run_cli("genolm-score", f"model_path={folders['esm']}", "limit=16", "report.n_boot=20",
                  f"paths.output_dir={tmp_path / 'out'}", f"paths.data_dir={DATA}")
    assert res.returncode == 0, res.stderr[-3000:]
    scores = pd.read_csv(tmp_path / "out" / "scores.tsv", sep="\t")
    assert len(scores) == 32 and set(scores["group"]) == {"exon", "intron"}
    assert scores[["l2", "cosine", "llr", "ref_ll"]].notna().all().all()
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["kind"] == "masked_lm"
    assert (tmp_path / "out" / "report.md").is_file()
