# pinwatch developer tasks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1

.DEFAULT_GOAL := help
.PHONY: help setup test lint format demo bench template-check build clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(SAM_VENV)/.installed node_modules/.installed ## install the app/test venv, the SAM CLI venv and DynamoDB Local

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# SAM CLI pins boto3 exactly, so it lives in its own venv (see requirements-sam.txt).
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV)/.installed ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

template-check: $(SAM_VENV)/.installed ## sam validate, cfn-lint and checkov on template.yaml
	$(SAM) validate --region $(AWS_DEFAULT_REGION)
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/checkov --quiet --compact --framework cloudformation -f template.yaml

build: $(SAM_VENV)/.installed ## sam build (python3.13, arm64, no container)
	PATH="$(dir $(shell command -v $(PYTHON))):$$PATH" $(SAM) build --cached --parallel

test: setup lint template-check ## everything CI runs: lint, template gates, the test suite
	$(BIN)/pytest

demo: $(VENV)/.installed node_modules/.installed ## the whole pipeline on local emulated AWS
	$(BIN)/pinwatch analyze events/sample-proxy.log

bench: $(VENV)/.installed node_modules/.installed ## performance figures as name=value lines
	$(BIN)/python -m benchmarks

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
