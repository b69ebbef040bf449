# IceBridge — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install demo serve test test-fast lint typecheck bench clean spark-runtime rest-catalog

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/icebridge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,databricks,gx,spark,service,gcs]'
	@touch $@

install: $(BIN)/icebridge ## Create .venv and install IceBridge with its test tools

demo: install ## Build a sample foreign estate under ./demo and migrate it end to end
	$(BIN)/icebridge demo --overwrite

serve: install ## Serve the REST API for the demo's configuration on 127.0.0.1:8000 (make demo first)
	$(BIN)/icebridge serve -c demo/icebridge.yaml --no-auth

test: install spark-runtime rest-catalog ## Run every test (installs and starts PostgreSQL and Prometheus, Chromium and axe-core for the wizard's browser tests, builds the Spark runtime and the REST catalog if missing)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-prometheus.sh
	bash scripts/ensure-browser.sh
	$(BIN)/pytest -q

test-fast: install ## Unit tests only
	$(BIN)/pytest -q tests/unit

lint: install ## ruff and mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

spark-runtime: install ## Build the local Spark + Iceberg runtime jars (build/spark-jars)
	bash scripts/build-spark-runtime.sh

rest-catalog: spark-runtime ## Build the Iceberg REST catalog server the tests start (build/rest-catalog)
	VENV=$(VENV) bash scripts/build-rest-catalog.sh

bench: install ## Benchmarks; results go to benchmarks/RESULTS.md
	bash scripts/ensure-postgres.sh && $(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean: ## Remove the demo, caches and the local state store
	rm -rf demo .icebridge .pytest_cache .mypy_cache .ruff_cache
