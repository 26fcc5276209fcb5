# RAG reference template. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
STAMP := $(VENV)/.setup-complete
MODELS := .models
export DO_NOT_TRACK := 1
export RAGAS_DO_NOT_TRACK := true
export SCARF_NO_ANALYTICS := true
export HF_HUB_OFFLINE := 1
export UNSTRUCTURED_DISABLE_NOTICE := 1

.DEFAULT_GOAL := help
.PHONY: help setup demo serve test test-unit lint fmt lock bench-ingest bench-store eval eval-gate eval-beir eval-qa eval-matrix clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv, install the locked dependencies, assemble the local models
$(STAMP): pyproject.toml requirements.lock packaging/en_core_web_sm/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m ingest.models $(MODELS)
	touch $(STAMP)

demo: setup ## Ingest the sample corpus into the embedded store and answer questions with citations
	$(VENV)/bin/rag demo

serve: setup ## Run the HTTP API on http://127.0.0.1:8000 (docs at /docs)
	$(VENV)/bin/rag serve

test: setup ## Run the whole test suite (unit, contract, integration)
	$(PY) -m pytest

test-unit: setup ## Run the fast unit tests only
	$(PY) -m pytest tests/unit

lint: setup ## ruff check + ruff format --check + mypy (strict on the packages)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: setup ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lock: ## Re-resolve requirements.lock from pyproject.toml (then run `make setup`)
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet uv==$(UV_VERSION); }
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

bench-ingest: setup ## Ingest throughput vs embed-only and LangChain: DATA=<BEIR dir> [OUT=f.json] [LIMIT=n]
	$(PY) -m eval.bench_ingest $(DATA) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

bench-store: setup ## Latency of the embedded engine vs qdrant-client local mode (POINTS=20000)
	$(PY) -m eval.bench_store --points $(or $(POINTS),20000) $(if $(OUT),--out $(OUT))

eval: setup ## Golden set over the sample corpus, offline: reports/golden.{json,md,html}
	$(VENV)/bin/rag eval golden --out $(or $(OUT),reports)

eval-gate: setup ## Golden set + regression gate (eval/thresholds.toml); exits 1 on a drop
	$(VENV)/bin/rag eval golden --gate --out $(or $(OUT),reports)

eval-beir: setup ## BEIR retrieval metrics: DATA=<dir> [SPLIT=test] [OUT=f.json] [LIMIT=n]
	$(VENV)/bin/rag eval beir $(DATA) --split $(or $(SPLIT),test) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

eval-qa: setup ## QA folder answer metrics: DATA=<dir> [OUT=f.json] [LIMIT=n]
	$(VENV)/bin/rag eval qa $(DATA) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

eval-matrix: setup ## Tradeoff table of pipeline configs: DATA=<dir> [SPLIT=test] [LIMIT=n]
	$(VENV)/bin/rag eval matrix $(DATA) --split $(or $(SPLIT),test) $(if $(LIMIT),--limit $(LIMIT)) --out $(or $(OUT),reports)

clean: ## Remove the embedded data (.data); keeps .venv and .models
	rm -rf .data
