# CloudAct scheduler-jobs toolkit. `make` (or `make help`) lists the targets.
# A thin dispatcher: logic lives in playbooks/, roles/ and Python (toolkit/).

.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

ENV ?= local
JOB ?=
PYTHON ?= python3
# REHEARSE=1: run ENV's unchanged inventory against localcloud's copy of its project (the client
# environment and that project's issued key change, nothing else; prod still asks for yes).
REHEARSE ?=
export REHEARSE

VENV := .venv
BIN := $(VENV)/bin
COLLECTIONS := collections/ansible_collections
COLLECTION := $(COLLECTIONS)/cloudact/gcp
STAMP := $(VENV)/.installed-3
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# One OAuth token per key and scope, shared by every process of a target (module_utils/tokens.py).
export CLOUDACT_STATE_DIR ?= $(CURDIR)/.cloudact

##@ Setup

.PHONY: help
help: ## List the targets with one line each
	@if [ -t 1 ]; then c=$$'\033[36m' b=$$'\033[1m' r=$$'\033[0m'; else c= b= r=; fi; \
	awk -v c="$$c" -v b="$$b" -v r="$$r" 'BEGIN {FS = ":.*##"; print "Usage: make <target> [ENV=local|test|stage|prod] [JOB=<name>] [REHEARSE=1]"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  %s%-16s%s %s\n", c, $$1, r, $$2 } \
	  /^##@/ { printf "\n%s%s%s\n", b, substr($$0, 5), r }' $(MAKEFILE_LIST)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the pinned dependencies (a no-op when nothing changed)

$(STAMP): requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is required, $(PYTHON) is %d.%d; set PYTHON=python3.11" % sys.version_info[:2])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt \
	  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
	@# The checkout's packages (toolkit, localcloud) and the cloudact.gcp collection importable from the
	@# venv, as an editable install would (Ansible finds the collection through ansible.cfg's collections_path).
	$(BIN)/python -c 'import site, sys; open(site.getsitepackages()[0] + "/cloudact-checkout.pth", "w").write("".join(p + "\n" for p in sys.argv[1:]))' "$(CURDIR)" "$(CURDIR)/collections"
	@# google.cloud (doc fragment google.cloud.gcp, module_utils gcp_utils) next to cloudact.gcp: ansible-test
	@# sees only the collection root the tested collection is in. A relative link into the pinned `ansible`
	@# package, git-ignored.
	$(BIN)/python -c 'import os, site, sys; src = os.path.join(site.getsitepackages()[0], "ansible_collections", "google", "cloud"); dst = sys.argv[1]; os.makedirs(os.path.dirname(dst), exist_ok=True); os.path.lexists(dst) and os.remove(dst); os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)' "$(CURDIR)/$(COLLECTIONS)/google/cloud"
	@touch $@

.PHONY: lock
lock: ## Re-resolve requirements/*.in to exact pins in requirements/*.txt
	PYTHON=$(PYTHON) tools/lock.sh

##@ Quality

# ansible-test sanity runs on the venv's Python (X.Y). It skips no test: SANITY_SKIP would hold
# `--skip-test <test>` options, each with its reason on a comment line above it.
SANITY_PYTHON = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SANITY_SKIP :=

.PHONY: lint
lint: lint-static sanity ## ruff, yamllint, ansible-lint (production profile), hadolint, ansible-test sanity

.PHONY: lint-static
lint-static: $(STAMP) ## The linters without ansible-test: ruff, yamllint, ansible-lint, hadolint, inventories, changelog
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --offline --profile production
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m toolkit check-inventories
	cd $(COLLECTION) && $(CURDIR)/$(BIN)/antsibull-changelog lint

.PHONY: sanity
sanity: $(STAMP) ## ansible-test sanity over the cloudact.gcp collection (its default tests, offline bootstrap)
	@# ansible-test sanity: its default tests over the collection, on the venv's Python (DEVELOPERS.md).
	@# Offline bootstrap: its test venvs get pip from tools/get_pip.py (ensurepip), seeded into its cache.
	$(BIN)/python tools/get_pip.py --seed
	cd $(COLLECTION) && $(CURDIR)/$(BIN)/ansible-test sanity --python $(SANITY_PYTHON) $(SANITY_SKIP)

.PHONY: pytest
pytest: chromium $(STAMP) ## Every pytest suite (unit, integration on localcloud, molecule, end to end)
	@# Two workers (this machine's two cores); a file's tests stay together on one of them. Random order
	@# (pytest-randomly): the header prints the seed; --randomly-seed=<seed> replays it (DEVELOPERS.md).
	$(BIN)/python -m pytest -p randomly -n 2 --dist loadfile

.PHONY: test
test: lint-static chromium $(STAMP) ## The test command: the linters, then ansible-test sanity and every pytest suite side by side
	@# sanity (mostly one process: pylint) runs beside pytest's two workers, which wait on localcloud and
	@# subprocesses a third of the time; -O prints each one's output whole when it ends, and a failure of
	@# either fails the target once both have finished.
	$(MAKE) --no-print-directory -j 2 -O sanity pytest

# The report's browser test renders in Debian's chromium (DEVELOPERS.md): installed here when missing.
.PHONY: chromium
chromium: ## Install Debian's chromium when it is missing (as root: apt-get; otherwise prints the one command)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "chromium is missing: installing Debian's package (apt-get install -y chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else \
	    echo "error: chromium is missing and this is not root; run: sudo apt-get install -y chromium" >&2; exit 1; \
	  fi; }

.PHONY: test-jobs
test-jobs: $(STAMP) ## Only the job scripts' tests (subprocess runs against local servers and localcloud)
	$(BIN)/python -m pytest tests/jobs

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

##@ Provisioning

ARGS ?=
WAIT ?= true
FORCE ?=
FROM ?=
N ?= 10
EXECUTION ?=
SINCE ?= 1h
STRICT ?=
# Extra ansible-playbook options, e.g. ANSIBLE_ARGS="-v" or "-e @vars.yml".
ANSIBLE_ARGS ?=
# ENV's environment, resolved once per target into the shell's $env: an unknown word stops here naming
# the valid ones; another word for an environment says so once (test is stage).
ENV_WORD = env=$$($(BIN)/python -m toolkit env '$(ENV)')
PLAYBOOK = $(BIN)/ansible-playbook -i inventories/$$env $(ANSIBLE_ARGS)
# ENV=local or REHEARSE=1: start localcloud if it is down (the play finds its client env and key by itself).
OPS_LOCAL = $(if $(or $(filter local,$(ENV)),$(filter 1 true yes,$(REHEARSE))),$(BIN)/python -m localcloud up >/dev/null &&,)
# For a guarded environment (prod): checks the target's inputs, then reads a typed or piped "yes" (or
# CONFIRM=yes) to a question naming what will run; the play gets the answer as -e "$$confirmed".
OPS_ASK = confirmed=$$($(BIN)/python -m toolkit.ask $$env --extra-vars '$(ANSIBLE_ARGS)'

PRUNE ?=
# PRUNE=1: also remove cloudact-* jobs and triggers that are not in the catalog.
CONVERGE_ARGS = -e cloudact_prune_unlisted=$(if $(PRUNE),true,false)
# JOB=<word> for pause/resume, checked (valid words, closest match) before anything runs.
TRIGGER_JOB = $(if $(JOB),$(BIN)/python -m toolkit resolve-job --scheduled '$(JOB)' >/dev/null &&,)

.PHONY: create-jobs
create-jobs: $(STAMP) ## Converge the catalog's 8 jobs + 5 triggers onto ENV, in place (prod asks for yes) [PRUNE=1]
	@$(ENV_WORD) && $(OPS_LOCAL) $(OPS_ASK) converge) && \
	$(PLAYBOOK) playbooks/create-jobs.yml -e "$$confirmed" $(CONVERGE_ARGS)

RELEASE ?=
DIRTY ?=

.PHONY: image
image: $(STAMP) ## Build the job image from the committed tree with Cloud Build, push it, print its digest [RELEASE=<tag>] [DIRTY=1] [FORCE=1]
	@$(ENV_WORD) && $(OPS_LOCAL) \
	$(OPS_ASK) image --release '$(RELEASE)' $(if $(DIRTY),--dirty) $(if $(FORCE),--force)) && \
	$(PLAYBOOK) playbooks/image.yml -e "$$confirmed" -e cloudact_image_release='$(RELEASE)' \
	  -e cloudact_image_dirty=$(if $(DIRTY),true,false) -e cloudact_image_force=$(if $(FORCE),true,false)

.PHONY: plan
plan: $(STAMP) ## What create-jobs would create, update or prune on ENV, field by field; changes nothing [PRUNE=1]
	@$(ENV_WORD) && $(OPS_LOCAL) \
	$(PLAYBOOK) playbooks/create-jobs.yml --check --diff $(CONVERGE_ARGS)

.PHONY: pause
pause: $(STAMP) ## Pause ENV's triggers: all, or JOB=<word>'s; a paused trigger stays paused on converge
	@$(ENV_WORD) && $(TRIGGER_JOB) $(OPS_LOCAL) $(OPS_ASK) pause --job '$(JOB)') && \
	$(PLAYBOOK) playbooks/trigger-state.yml -e "$$confirmed" \
	  -e cloudact_trigger_state=paused -e cloudact_trigger_job='$(JOB)'

.PHONY: resume
resume: $(STAMP) ## Resume ENV's triggers: all, or JOB=<word>'s
	@$(ENV_WORD) && $(TRIGGER_JOB) $(OPS_LOCAL) $(OPS_ASK) resume --job '$(JOB)') && \
	$(PLAYBOOK) playbooks/trigger-state.yml -e "$$confirmed" \
	  -e cloudact_trigger_state=enabled -e cloudact_trigger_job='$(JOB)'

##@ Operations

# make run overrides: RUN_ENV="NAME=value ...", TASKS=<n>, TIMEOUT=<15m>; COMMAND is refused (Cloud Run has none).
RUN_ENV ?=
TASKS ?= 0
TIMEOUT ?=
COMMAND ?=

.PHONY: run
run: $(STAMP) ## Run a job and wait: JOB=<word> [ARGS="..."] [RUN_ENV=.. TASKS=.. TIMEOUT=..] [WAIT=false] [FORCE=1]
	@$(ENV_WORD) && $(OPS_LOCAL) $(OPS_ASK) run --job '$(JOB)') && \
	$(PLAYBOOK) playbooks/run-job.yml -e "$$confirmed" \
	  -e cloudact_run_job='$(JOB)' -e cloudact_run_args='$(ARGS)' -e cloudact_run_wait=$(WAIT) \
	  -e cloudact_run_force=$(if $(FORCE),true,false) -e cloudact_run_env='$(RUN_ENV)' \
	  -e cloudact_run_task_count='$(TASKS)' -e cloudact_run_timeout='$(TIMEOUT)' -e cloudact_run_command='$(COMMAND)'

.PHONY: release
release: $(STAMP) ## The release: migrate -> bootstrap -> org-sync-all, then the validation report [FROM=<step>]
	@$(ENV_WORD) && $(OPS_LOCAL) $(OPS_ASK) release --from '$(FROM)') && \
	$(PLAYBOOK) playbooks/release.yml -e "$$confirmed" -e cloudact_release_from='$(FROM)'

# VIA=ansible: the same report through playbooks/status.yml (slower: ansible-playbook's start-up).
VIA ?=

.PHONY: status
status: $(STAMP) ## The 8 jobs: trigger state, last run, result, OVERDUE/FAILED/STUCK flags [STRICT=1: flags exit 1]
ifeq ($(VIA),ansible)
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/status.yml -e cloudact_status_strict=$(if $(STRICT),true,false)
else
	@$(ENV_WORD) && $(OPS_LOCAL) $(BIN)/python -m toolkit.live_status $$env $(if $(STRICT),--strict)
endif

# The doctor reads ENV itself (an unknown word is its first row): ENV's inventory when it names one.
# PROBE=alerts: also the checks that POST (the alerts endpoint's dry run), once, never resent.
PROBE ?=

.PHONY: doctor
doctor: $(STAMP) ## Read-only checks of ENV, each naming the cause and the command that fixes it [STRICT=1] [PROBE=alerts]
	@env=$$($(BIN)/python -m toolkit env '$(ENV)' 2>/dev/null) && inv=inventories/$$env || inv=localhost,; \
	$(BIN)/ansible-playbook -i "$$inv" $(ANSIBLE_ARGS) playbooks/doctor.yml \
	  -e cloudact_doctor_env='$(ENV)' -e cloudact_doctor_strict=$(if $(STRICT),true,false) \
	  -e '{"cloudact_doctor_probes": [$(if $(PROBE),"$(PROBE)")]}'

.PHONY: incidents
incidents: $(STAMP) ## Open and recent incidents of ENV's alert policies (Cloud Monitoring): state, opened, closed, job, policy
	@$(ENV_WORD) && $(OPS_LOCAL) $(BIN)/python -m toolkit.incidents $$env

.PHONY: history
history: $(STAMP) ## Executions of a job: JOB=<word> [N=10]: result, start, duration, trigger
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/history.yml -e cloudact_history_job='$(JOB)' -e cloudact_history_limit='$(N)'

DAYS ?= 30
OUT ?=
AT ?=

.PHONY: report
report: $(STAMP) ## One self-contained HTML page of ENV's jobs: timelines, durations, flags, next fire times [DAYS=30] [OUT=file]
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/report.yml -e cloudact_report_days='$(DAYS)' -e cloudact_report_out='$(OUT)'

# N is history's count too (default 10); the calendar's default is 5 unless N is given.
.PHONY: calendar
calendar: $(STAMP) ## Each trigger's next fire times in UTC and in its time zone, DST notes [N=5] [AT=<RFC 3339 start>]
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/calendar.yml -e cloudact_calendar_at='$(AT)' \
	  $(if $(filter command line environment,$(origin N)),-e cloudact_calendar_count='$(N)')

.PHONY: ledger-sync
ledger-sync: $(STAMP) ## Append Cloud Run's executions of ENV to the execution ledger (BigQuery) where it lacks them; idempotent
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/ledger-sync.yml

.PHONY: logs
logs: $(STAMP) ## Log lines of a job: JOB=<word> [EXECUTION=<name>] [SINCE=1h]
	@$(ENV_WORD) && $(OPS_LOCAL) $(PLAYBOOK) playbooks/logs.yml -e cloudact_logs_job='$(JOB)' \
	  -e cloudact_logs_execution='$(EXECUTION)' -e cloudact_logs_since='$(SINCE)'

.PHONY: cancel
cancel: $(STAMP) ## Cancel a running execution: JOB=<word> [EXECUTION=<name>] (default: the running ones)
	@$(ENV_WORD) && $(OPS_LOCAL) $(OPS_ASK) cancel --job '$(JOB)' --execution '$(EXECUTION)') && \
	$(PLAYBOOK) playbooks/cancel.yml -e "$$confirmed" \
	  -e cloudact_cancel_job='$(JOB)' -e cloudact_cancel_execution='$(EXECUTION)'

##@ Benchmarks (scripts that measure; nothing here is a test)

.PHONY: bench-startup
bench-startup: $(STAMP) ## Job script start-up: time to the first request vs bare python and httpx+asyncio [RUNS=15]
	$(BIN)/python bench/startup.py --runs $(or $(RUNS),15)

.PHONY: bench-converge
bench-converge: $(STAMP) ## create-jobs on a localcloud of its own: from empty and no-change, wall time and requests [RUNS=3]
	$(BIN)/python bench/converge.py --runs $(or $(RUNS),3)

.PHONY: bench-release
bench-release: $(STAMP) ## Wall time and requests of make release and make status on a localcloud of its own [RUNS=3]
	$(BIN)/python bench/release.py --runs $(or $(RUNS),3)

.PHONY: bench-migrate
bench-migrate: $(STAMP) ## supabase_migrate on localcloud: requests and time per file [FILES=50]
	$(BIN)/python bench/migrate.py --files $(or $(FILES),50)

.PHONY: bench-localcloud
bench-localcloud: $(STAMP) ## localcloud: start-to-ready, proxy throughput, data-plane timings
	$(BIN)/python bench/localcloud_startup.py
	$(BIN)/python bench/localcloud_proxy.py
	$(BIN)/python bench/localcloud_data_plane.py

.PHONY: bench-lost-answers
bench-lost-answers: $(STAMP) ## What the safety reads cost: a run's digest check, the look after a lost answer, prod's question [RUNS=3]
	$(BIN)/python bench/lost_answers.py --runs $(or $(RUNS),3)

.PHONY: bench-image
bench-image: $(STAMP) ## make image on a localcloud of its own: wall time, bytes uploaded, requests; the release preflight's added cost [RUNS=3]
	$(BIN)/python bench/image.py --runs $(or $(RUNS),3)

.PHONY: bench-report
bench-report: $(STAMP) ## make report over 30 days of the 8 jobs, alerts hourly, on a localcloud of its own (goal < 5 s) [RUNS=3]
	$(BIN)/python bench/report.py --runs $(or $(RUNS),3)

.PHONY: bench-doctor
bench-doctor: $(STAMP) ## make doctor on a healthy localcloud of its own: wall time, requests, writes (none) [RUNS=5]
	$(BIN)/python bench/doctor.py --runs $(or $(RUNS),5)

.PHONY: bench-ledger
bench-ledger: $(STAMP) ## make ledger-sync of N executions on a localcloud of its own, twice (appends all, then nothing) [EXECUTIONS=10000]
	$(BIN)/python bench/ledger.py --executions $(or $(EXECUTIONS),10000)

.PHONY: bench-gcloud
bench-gcloud: $(STAMP) ## gcloud against localcloud: wall time per command, make status vs gcloud for the 8 jobs [RUNS=5]
	$(BIN)/python bench/gcloud.py --runs $(or $(RUNS),5)
