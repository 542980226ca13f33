# genolm — the two set-up commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU wheel by default; on a GPU machine: make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH_SPEC ?= torch==2.13.0
DATA_MIRROR ?= ../shared/data
MODELS_MIRROR ?= $(DATA_MIRROR)/../models
# link (default) or copy
DATA_MODE ?= link
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install data demo test test-fast test-unit test-slow lint clean gue benchmark zeroshot generation design bench bench-scale interpret

# exact versions the suite passed with (CONSTRAINTS= installs what pip resolves today)
CONSTRAINTS ?= constraints.txt

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

data:
	@test -d "$(DATA_MIRROR)" || { echo "make data: mirror folder '$(DATA_MIRROR)' not found; set DATA_MIRROR=/path (see data/README.md)" >&2; exit 1; }
	@mkdir -p data
	@for src in "$(abspath $(DATA_MIRROR))"/*/ $(if $(wildcard $(MODELS_MIRROR)),"$(abspath $(MODELS_MIRROR))"); do \
	  src=$${src%/}; name=$$(basename "$$src"); [ "$$src" = "$(abspath $(MODELS_MIRROR))" ] && name=models; \
	  if [ -e "data/$$name" ] && [ ! -L "data/$$name" ]; then echo "data/$$name exists, kept"; continue; fi; \
	  if [ "$(DATA_MODE)" = copy ]; then rm -f "data/$$name"; cp -r "$$src" "data/$$name"; else ln -sfn "$$src" "data/$$name"; fi; \
	done
	@echo "data/ ready ($(DATA_MODE) from $(DATA_MIRROR)):"; ls data

demo: install data
	$(BIN)/genolm-pretrain experiment=demo
	$(BIN)/genolm-finetune experiment=demo_finetune model_path=$$(ls -td logs/demo/runs/*/hf | head -1)
	$(BIN)/genolm-score model_path=$$(ls -td logs/demo/runs/*/hf | head -1) limit=200 task_name=demo_score
	$(BIN)/genolm-generate experiment=demo_generate model_path=$$(ls -td logs/demo/runs/*/hf | head -1)
	$(BIN)/genolm-optimize model_path=data/models/Mistral-DNA-v1-1M-hg38-finetuned-tf0 \
	  start.csv=data/GUE/tf/0/test.csv start.label=0 start.n=3 task_name=demo_optimize

# everything but `slow` (what CI runs); test-fast: no subprocess runs, no in-process fits (under a minute);
# test-unit: tests/unit only, needs no data mirror
test: install data
	$(BIN)/pytest

test-fast: install data
	$(BIN)/pytest -m "not slow and not subprocess and not fit"

test-unit: install
	$(BIN)/pytest tests/unit

test-slow: install data
	$(BIN)/pytest -m slow

lint: install
	$(BIN)/ruff check src tests experiments

clean:
	rm -rf .cache logs .pytest_cache

# GUE benchmark: (a) genolm's own pretrained mistral_dna_1m (latest demo run) and (b) the same
# architecture initialised from Mistral-DNA-1M weights (backbone of a checkpoint finetuned on a
# different task, new head). Results: experiments/gue/RESULTS.md.
GUE_TF ?= tf0,tf1,tf2,tf3
GUE_EPOCHS ?= 5
GUE_EXTRA ?=
# strand=forward: single-strand test numbers, comparable with the anchors and GUE papers (see STRAND.md)
GUE_ARGS = data.eval_batch_size=512 trainer.max_epochs=$(GUE_EPOCHS) trainer.enable_progress_bar=false model.new_head=true strand=forward $(GUE_EXTRA)
gue: install data
	@test -n "$$(ls -d logs/demo/runs/*/hf 2>/dev/null)" || $(BIN)/genolm-pretrain experiment=demo
	@set -e; out=logs/gue/$$(date +%Y%m%d_%H%M%S); t0=$$(date +%s); \
	$(BIN)/genolm-finetune -m task=$(GUE_TF),prom_core_all $(GUE_ARGS) hydra.sweep.dir=$$out/genolm_1m \
	  model_path=$$(ls -td logs/demo/runs/*/hf | head -1); t1=$$(date +%s); \
	$(BIN)/genolm-finetune -m task=$(GUE_TF) $(GUE_ARGS) hydra.sweep.dir=$$out/mistral_tf \
	  model_path=data/models/Mistral-DNA-v1-1M-hg38-finetuned-prom; t2=$$(date +%s); \
	$(BIN)/genolm-finetune -m task=prom_core_all $(GUE_ARGS) hydra.sweep.dir=$$out/mistral_prom \
	  model_path=data/models/Mistral-DNA-v1-1M-hg38-finetuned-tf0; t3=$$(date +%s); \
	$(BIN)/python experiments/gue/report.py experiments/gue/RESULTS.md \
	  "genolm 1M (a)=$$out/genolm_1m:$$((t1-t0))" "Mistral-DNA-1M backbone (b)=$$out/mistral_tf,$$out/mistral_prom:$$((t3-t1))"

# Seeds and confidence intervals (genolm-benchmark): on the GUE TF tasks, the latest demo model and the
# Mistral-DNA-1M weights (the shipped prom checkpoint; the tf1 one for prom_core_all, so no backbone
# was finetuned on its own task) finetuned with BENCH_SEEDS seeds, a probe on each one's cached
# embeddings, the k-mer LR and the from-scratch CNN, in one table (seed mean ± sd, test-set bootstrap
# CIs, paired differences): logs/benchmark/results/benchmark.md. Finished runs are skipped, so
# rerunning resumes. On the 2-core CPU a demo-model finetune takes ~15-20 min per task and seed; fewer:
# make benchmark BENCH_TASKS=tf0 BENCH_SEEDS=2 BENCH_EPOCHS=3
comma := ,
BENCH_TASKS ?= tf0,tf1,tf2,tf3
BENCH_PROM ?= prom_core_all
BENCH_SEEDS ?= 3
BENCH_EPOCHS ?= 5
BENCH_EXTRA ?=
BENCH_RUN = $(BIN)/genolm-benchmark seeds=$(BENCH_SEEDS) probe=true \
	  "finetune=['trainer.max_epochs=$(BENCH_EPOCHS)','trainer.enable_progress_bar=false','model.new_head=true','strand=forward','data.eval_batch_size=512']"
benchmark: install data
	@test -n "$$(ls -d logs/demo/runs/*/hf 2>/dev/null)" || $(BIN)/genolm-pretrain experiment=demo
	@set -e; demo=$$(ls -td logs/demo/runs/*/hf | head -1); \
	$(BENCH_RUN) tasks=[$(BENCH_TASKS)] $(BENCH_EXTRA) \
	  "backbones={genolm_demo: $$demo, mistral_1m: data/models/Mistral-DNA-v1-1M-hg38-finetuned-prom}"; \
	if [ -n "$(BENCH_PROM)" ]; then $(BENCH_RUN) tasks=[$(BENCH_PROM)] $(BENCH_EXTRA) \
	  "backbones={genolm_demo: $$demo, mistral_1m: data/models/Mistral-DNA-v1-1M-hg38-finetuned-tf1}"; fi; \
	$(BIN)/genolm-benchmark aggregate=true tasks=[$(BENCH_TASKS)$(if $(BENCH_PROM),$(comma)$(BENCH_PROM))] \
	  "backbones={genolm_demo: $$demo, mistral_1m: data/models/Mistral-DNA-v1-1M-hg38-finetuned-prom}"

# Zero-shot exon vs intron experiment on all 20,000 course SNP pairs with the latest demo model.
zeroshot: install data
	@test -n "$$(ls -d logs/demo/runs/*/hf 2>/dev/null)" || $(BIN)/genolm-pretrain experiment=demo
	$(BIN)/python experiments/zeroshot/run.py $$(ls -td logs/demo/runs/*/hf | head -1) experiments/zeroshot

# Generation experiment: yeast LM (bounded CPU budget) sampled at T = 0.7, 1.0, 1.3.
generation: install data
	@test -n "$$(ls -d logs/pretrain_yeast/runs/*/hf 2>/dev/null)" || $(BIN)/genolm-pretrain experiment=pretrain_yeast
	$(BIN)/python experiments/generation/run.py $$(ls -td logs/pretrain_yeast/runs/*/hf | head -1) experiments/generation

# Design experiment: 100 tf/0 test negatives, shipped tf0 oracle, each algorithm at 10 edits.
design: install data
	$(BIN)/python experiments/design/run.py experiments/design

# Interpretation experiment: ISM, IG and TF-MoDISco motifs (TOMTOM vs JASPAR) on the 500 GUE tf/0 test
# positives with the shipped tf0 classifier, the planted-motif positive control, and batched vs
# per-mutant vs prefix-sharing ISM on 200-b windows (also a part of `make bench`). Results:
# experiments/interpret/RESULTS.md.
interpret: install data
	$(BIN)/genolm-interpret model_path=data/models/Mistral-DNA-v1-1M-hg38-finetuned-tf0 \
	  input.csv=data/GUE/tf/0/test.csv input.label=1 modisco.min_metacluster_size=20 \
	  modisco.final_min_cluster_size=10 task_name=interpret_tf0
	$(BIN)/python experiments/interpret/diagnose.py $$(ls -td logs/interpret_tf0/runs/* | head -1)
	$(BIN)/python experiments/interpret/planted_control.py experiments/interpret/planted
	$(BIN)/python experiments/benchmarks/ism.py

# Performance benchmark: the course's HF Trainer recipe vs genolm-pretrain on the same hg38 chunks,
# tokenizer, Mixtral configs and global batch; data-side memory (1x, 10x corpus); batched vs
# per-sequence inference; ISM (per-mutant loop, batched, prefix-sharing); hot-path profile. Appends
# to experiments/benchmarks/RESULTS.md. On a GPU machine: make bench BENCH_ARGS='--mode gpu';
# one part only: make bench BENCH_ARGS='--parts ism'
BENCH_ARGS ?=
bench: install data
	$(BIN)/python experiments/benchmarks/run.py $(BENCH_ARGS)

# Data preparation at scale: corpus preparation, BPE training and token cache at 1x, 10x, 30x and 100x the
# demo corpus (mutated copies), wall time and peak memory of each stage, extrapolated to hg38 and a
# 30 Gb corpus. Writes experiments/scale/{results.tsv,latest.md,scale.png}; inputs and caches in
# .cache/scale (~1 GB at 100x). Fewer: make bench-scale SCALE_ARGS='--scales 1 10'
SCALE_ARGS ?=
bench-scale: install data
	$(BIN)/python experiments/scale/run.py $(SCALE_ARGS)
