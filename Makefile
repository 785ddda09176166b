# CloudAct scheduler-jobs toolkit. `make` (or `make help`) lists the targets.
# A thin dispatcher: logic lives in playbooks/, roles/ and Python (toolkit/).

.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

ENV ?= local
JOB ?=
PYTHON ?= python3

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

##@ Setup

.PHONY: help
help: ## List the targets with one line each
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [ENV=local|test|stage|prod] [JOB=<name>]\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the pinned dependencies (a no-op when nothing changed)

$(STAMP): requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is required, $(PYTHON) is %d.%d; set PYTHON=python3.11" % sys.version_info[:2])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt \
	  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
	@# The checkout's packages (toolkit, localcloud) importable from the venv, as an editable install would.
	$(BIN)/python -c 'import site, sys; open(site.getsitepackages()[0] + "/cloudact-checkout.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	@touch $@

.PHONY: lock
lock: ## Re-resolve requirements/*.in to exact pins in requirements/*.txt
	PYTHON=$(PYTHON) tools/lock.sh

##@ Quality

.PHONY: lint
lint: $(STAMP) ## ruff, yamllint, ansible-lint (production profile), hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --offline --profile production
	$(BIN)/hadolint Dockerfile

.PHONY: test
test: lint $(STAMP) ## The test command: lint, then every pytest suite (unit, integration on localcloud, molecule, end to end)
	$(BIN)/python -m pytest

.PHONY: test-unit
test-unit: $(STAMP) ## Only the unit tests (no localcloud)
	$(BIN)/python -m pytest -m "not localcloud"

.PHONY: clean
clean: ## Remove .venv and caches (keeps .localcloud state)
	rm -rf $(VENV) .pytest_cache .ruff_cache

##@ localcloud

.PHONY: local-up
local-up: $(STAMP) ## Start localcloud (the emulated cloud) in the background and wait until ready; idempotent
	@$(BIN)/python -m localcloud up

.PHONY: local-down
local-down: $(STAMP) ## Stop the background localcloud by its pid
	@$(BIN)/python -m localcloud down

.PHONY: local-reset
local-reset: $(STAMP) ## Stop localcloud and wipe its state (.localcloud/)
	@$(BIN)/python -m localcloud reset

.PHONY: local-env
local-env: $(STAMP) ## Print the export lines that point clients at localcloud: eval "$(make -s local-env)"
	@$(BIN)/python -m localcloud env --ensure-up

.PHONY: local-status
local-status: $(STAMP) ## Say whether localcloud is up, its pid, port, services and clock
	@$(BIN)/python -m localcloud status
