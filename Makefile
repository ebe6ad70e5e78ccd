# pinwatch developer tasks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
export AWS_DEFAULT_REGION ?= us-east-1
# The SAM CLI would otherwise try to send usage telemetry on every command.
export SAM_CLI_TELEMETRY ?= 0

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast lint format demo demo-org bench bench-docs template-check build clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed ## install the app/test venv, the SAM CLI and checkov venvs, and DynamoDB Local

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

# checkov pins many packages (an old boto3 among them): a third venv (see requirements-checkov.txt).
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
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

# Every optional resource switched on, so the rendered template holds everything the stack can create.
# (Resources with a condition are rendered either way, the organization-mode ones included.)
TEMPLATE_CHECK_PARAMS := --param ProxyNames=orders-db,billing-db --param AlertEmail=oncall@example.com \
	--param SlackWebhookSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:pinwatch/slack-AbCdEf \
	--param EnableTracing=true --param ReasonCapture=on-incident
# The templates the organization StackSets deploy: plain CloudFormation, checked as written.
ORG_TEMPLATES := org/member.yaml org/collector.yaml

template-check: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## sam validate, cfn-lint and checkov on template.yaml and org/*.yaml
	$(SAM) validate --region $(AWS_DEFAULT_REGION) --language-extensions
	$(SAM_VENV)/bin/cfn-lint template.yaml $(ORG_TEMPLATES)
	@# checkov reads template.yaml as written, then the plain CloudFormation it becomes (Fn::ForEach
	@# expanded, SAM transform applied), where the IAM roles and the looped resources are visible.
	@mkdir -p .aws-sam/template-check
	$(SAM_VENV)/bin/python tests/template/render.py template.yaml $(TEMPLATE_CHECK_PARAMS) \
		> .aws-sam/template-check/rendered.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f template.yaml -f .aws-sam/template-check/rendered.json \
		$(addprefix -f ,$(ORG_TEMPLATES))

build: $(SAM_VENV)/.installed ## sam build (python3.13, arm64, no container)
	PATH="$(dir $(shell command -v $(PYTHON))):$$PATH" $(SAM) build --cached --parallel --language-extensions

test: setup lint template-check ## everything CI runs: lint, template gates, the test suite
	$(BIN)/pytest

# The inner loop: pure unit and property tests (no DynamoDB Local, moto or SAM), spread over CPUs by
# pytest-xdist. Each worker imports and collects the whole set again (~2 s of CPU), so on a machine
# whose cores are already busy TEST_WORKERS=0 (one process) can be quicker.
# PYTEST_ARGS passes options through, e.g. `make test-fast PYTEST_ARGS="-k parse -x"`.
TEST_WORKERS ?= auto
test-fast: $(VENV)/.installed ## unit and property tests in parallel, for the edit-test loop (no local services)
	$(BIN)/pytest -q -n $(TEST_WORKERS) tests/unit tests/fuzz $(PYTEST_ARGS)

# DEMO_ARGS passes options through, e.g. `make demo DEMO_ARGS=--keep` (see `pinwatch demo --help`).
demo: $(VENV)/.installed node_modules/.installed ## the whole pipeline on local emulated AWS: an incident replayed through both functions
	$(BIN)/pinwatch demo $(DEMO_ARGS)

demo-org: $(VENV)/.installed node_modules/.installed ## organization mode on local emulated AWS: two member accounts, one central stack
	$(BIN)/pinwatch demo --org $(DEMO_ARGS)

bench: $(VENV)/.installed node_modules/.installed ## performance figures as name=value lines
	$(BIN)/python -m benchmarks

bench-docs: $(VENV)/.installed node_modules/.installed ## make bench, then rewrite the generated figures in docs/performance.md and docs/cost.md
	$(BIN)/python -m benchmarks --write-docs docs/performance.md --write-cost-docs docs/cost.md

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
