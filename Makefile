# keystate developer entry points. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_CONFORMANCE := tests/conformance/coveo
NODE_STAMP := $(NODE_CONFORMANCE)/node_modules/.installed

.PHONY: demo test lint typecheck unit ci-audit bench clean reliability-long

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --quiet -e '.[dev]'
	touch $(STAMP)

## make demo: validate -> plan -> apply -> plan on the quickstart's embedded sandbox
demo: $(STAMP)
	@KEYSTATE=$(abspath $(BIN))/keystate ./examples/quickstart/demo.sh

## make test: lint, type-check, the CI recipes' audit and the whole test suite
test: lint typecheck ci-audit unit

# The official Coveo client (npm), for the conformance test against the emulator.
$(NODE_STAMP): $(NODE_CONFORMANCE)/package.json $(NODE_CONFORMANCE)/package-lock.json
	npm ci --prefix $(NODE_CONFORMANCE) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check keystate tests bench scripts
	$(BIN)/ruff format --check keystate tests bench scripts
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

## make ci-audit: the GitHub Actions recipes in examples/ci/ pass zizmor's security audit
## (offline; any finding above "informational" fails: zizmor exits non-zero on a finding
## it reports) and validate against the GitHub workflow JSON Schema.
CI_RECIPES := $(wildcard examples/ci/*.yml)
ci-audit: $(STAMP)
	$(BIN)/zizmor --offline --no-progress --min-severity low $(CI_RECIPES)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(CI_RECIPES)

unit: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest

## make reliability-long: the reliability suite with its long profile (more examples,
## seeds, kills and concurrent rounds); figures in .pytest_cache/keystate-reliability/
reliability-long: $(STAMP)
	KEYSTATE_RELIABILITY_PROFILE=long $(BIN)/pytest tests/reliability --timeout=3600

## make bench: plan/apply against latency-injected emulators, side by side with the floor
## and the reference peers; prints one table, writes bench/results/latest.json and the
## table in docs/performance.md (~30 min).
## make bench BENCH_ARGS="--quick --runs 2": small sizes, for iterating (latest-quick.json).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .keystate .pytest_cache .mypy_cache .ruff_cache
