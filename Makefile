# portdocs: every command a developer or CI needs. Each target installs what it uses.
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0

.PHONY: demo test lint template build unit integration e2e bench soak sandbox clean

## demo: run the main job locally (sandbox: no AWS or Telnyx account needed)
demo: $(VENV)/.installed
	$(BIN)/portdocs demo

## sandbox: start the local sandbox and keep it running
sandbox: $(VENV)/.installed
	$(BIN)/portdocs sandbox

## test: lint, template checks, then the whole test suite (what CI runs)
test: lint template
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

template: $(VENV)/.installed $(SAM_VENV)/.installed
	$(BIN)/cfn-lint
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint
	$(MAKE) build

## build: `sam build` of the functions and the layer (python3.13 on arm64, without Docker)
build: $(VENV)/.installed $(SAM_VENV)/.installed
	PYTHON=$(CURDIR)/$(BIN)/python SAM_CLI_TELEMETRY=0 $(SAM) build --cached
	$(PYTHON) -S -B scripts/check_build.py

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.installed
	$(BIN)/pytest tests/integration

e2e: $(VENV)/.installed
	$(BIN)/pytest tests/e2e

## bench: cold start against the floor, batches of 10 against 1 (together vs one at a time), and a 200 MiB streaming upload against a naive one
bench: $(VENV)/.installed
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/batch_ratio.py 2>/dev/null
	$(BIN)/python bench/upload_memory.py

## soak: hostile soak through the sandbox, one summary line (SOAK_DOCUMENTS=1000, SOAK_ARGS="--seed 7 --verbose")
soak: $(VENV)/.installed
	@$(BIN)/python scripts/soak.py $(SOAK_ARGS)

$(VENV)/.installed: requirements-dev.txt layers/portdocs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -e .
	touch $@

# aws-sam-cli pins versions the app's dependencies conflict with: it lives in its own venv.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache
