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

.PHONY: install data demo test test-slow lint clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
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
	$(BIN)/genolm-finetune experiment=demo_finetune model.init_from=$$(ls -td logs/demo/runs/*/hf | head -1)

test: install data
	$(BIN)/pytest

test-slow: install data
	$(BIN)/pytest -m slow

lint: install
	$(BIN)/ruff check src tests

clean:
	rm -rf .cache logs .pytest_cache
