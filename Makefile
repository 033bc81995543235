# portdocs: every command a developer or CI needs. Each target installs what it uses.
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
UV_VENV := .venv-uv
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
# Every install is from a lock file with every file's hash (requirements/*.txt, the layer's
# requirements.txt), checked by --require-hashes: a package that changed on the index fails the
# install instead of running. Wheels only: building a source package would fetch its build tools
# unchecked. `make lock` refreshes them all.
PIP_LOCKED := pip install --quiet --require-hashes --no-deps --only-binary=:all:
LOCK = $(UV_VENV)/bin/uv pip compile --quiet --generate-hashes --upgrade --custom-compile-command "make lock"

.PHONY: demo test lint hooks template scan build unit integration e2e bench bench-bulk soak sandbox lock clean

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

## hooks: install the pre-commit hooks (local: the venv's own tools, no network)
hooks: $(VENV)/.installed
	$(BIN)/pre-commit install

template: $(VENV)/.installed $(SAM_VENV)/.installed scan
	$(BIN)/cfn-lint
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint
	$(MAKE) build

## scan: checkov over template.yaml; it fails on any finding not fixed or skipped there with a reason
scan: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

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

## bench: cold start against the floor, batches of 10 against 1 (together vs one at a time), streaming uploads (200 MiB to the files service, 19 MiB to the documents service) against naive ones, checking and converting a 20 MiB TIFF, a 100-page fax and a HEIC photo against a naive in-process conversion, and the webhook receiver's cold start and time to a 2xx against naive unverified queueing
bench: $(VENV)/.installed
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/batch_ratio.py 2>/dev/null
	$(BIN)/python bench/upload_memory.py
	$(BIN)/python bench/conversion.py
	$(BIN)/python bench/receiver.py

## bench-bulk: portdocs bulk through the sandbox, 1,000 documents to 300 porting orders: documents per minute from the first drop to the last end against the naive loop of one drop then a wait, every row attached exactly once and nothing sent by a second run, and the cost per 1,000 documents on arm64 priced from what the run measured (BENCH_BULK_DOCUMENTS, BENCH_BULK_ORDERS, BENCH_BULK_NAIVE=20)
bench-bulk: $(VENV)/.installed
	$(BIN)/python bench/bulk.py

## soak: hostile soak through the sandbox, one summary line (SOAK_DOCUMENTS=1000, SOAK_ARGS="--seed 7 --verbose")
soak: $(VENV)/.installed
	@$(BIN)/python scripts/soak.py $(SOAK_ARGS)

## lock: re-resolve every lock file (latest releases the .in files admit), with hashes
lock: $(UV_VENV)/.installed
	$(LOCK) --override requirements/overrides.txt --python-version 3.13 --python-platform aarch64-manylinux_2_28 \
		layers/portdocs/requirements.in -o layers/portdocs/requirements.txt
	$(LOCK) --override requirements/overrides.txt --universal --python-version 3.11 \
		requirements/dev.in -o requirements/dev.txt
	$(LOCK) --universal --python-version 3.11 requirements/sam-cli.in -o requirements/sam-cli.txt
	$(LOCK) --universal --python-version 3.11 requirements/checkov.in -o requirements/checkov.txt
	$(LOCK) --universal --python-version 3.11 requirements/uv.in -o requirements/uv.txt

# The project itself goes in without build isolation: its build backend is in the lock, hashed.
$(VENV)/.installed: requirements/dev.txt layers/portdocs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_LOCKED) -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Tools whose pins conflict with the app's (and with each other's) live in venvs of their own.
$(SAM_VENV)/.installed: requirements/sam-cli.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/$(PIP_LOCKED) -r requirements/sam-cli.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/$(PIP_LOCKED) -r requirements/checkov.txt
	touch $@

$(UV_VENV)/.installed: requirements/uv.txt
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/$(PIP_LOCKED) -r requirements/uv.txt
	touch $@

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(UV_VENV) .aws-sam .pytest_cache .ruff_cache
