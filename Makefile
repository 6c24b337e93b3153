# Vigie — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install run stack test bench fuzz lint unit integration schemas dashboards secrets audit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@missing=""; \
	  { command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ]; } || missing="clickhouse-server"; \
	  { command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ]; } || missing="$$missing prometheus"; \
	  { command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; } \
	    || missing="$$missing prometheus-alertmanager"; \
	  ls /usr/lib/*-linux-gnu/libjemalloc.so.2 >/dev/null 2>&1 || missing="$$missing libjemalloc2"; \
	  if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	    >/dev/null; fi
	@[ -x $(PY) ] || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## install what is missing (venv, Python packages, clickhouse-server, prometheus, alertmanager, jemalloc)

run: $(STAMP) ## live pipeline: broker + ClickHouse + worker + simulator x60 + forecasts + board (Ctrl-C stops all)
	$(VENV)/bin/vigie run

stack: $(STAMP) ## the local stack alone (broker + ClickHouse + migrations + topics) for import/replay work; `vigie sql` reads it
	$(VENV)/bin/vigie stack

test: $(STAMP) ## lint, layer contracts, unit tests, then integration tests on a real broker and ClickHouse
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest -q -ra --durations=15 tests examples

bench: $(STAMP) ## all speed figures incl. a simulated year (~8 min, 14 the first time; own broker + ClickHouse), table + JSON in bench-results/
	$(VENV)/bin/vigie bench

fuzz: $(STAMP) ## long runs with fresh seeds: the fuzzed parsers (FUZZ_EXAMPLES, 50000) and the disorder properties (PROPERTY_EXAMPLES, 5000)
	VIGIE_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-50000} $(VENV)/bin/pytest -q tests/fuzz
	VIGIE_PROPERTY_EXAMPLES=$${PROPERTY_EXAMPLES:-5000} $(VENV)/bin/pytest -q tests/unit/test_disorder.py

lint: $(STAMP) ## ruff and the layer contracts (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

unit: $(STAMP) ## unit tests only
	$(VENV)/bin/pytest -q tests/unit

integration: $(STAMP) ## integration tests only
	$(VENV)/bin/pytest -q tests/integration

schemas: $(STAMP) ## re-export the JSON Schemas of every registered processor's events and of the CAD mapping file
	$(VENV)/bin/vigie schemas

dashboards: $(STAMP) ## regenerate the dashboards' JSON from the code (grafana/ and every registered processor's)
	$(VENV)/bin/vigie grafana generate

secrets: $(STAMP) ## random passwords for the compose stack in deploy/.env (kept if it exists)
	$(VENV)/bin/vigie secrets

AUDIT_VENV := .vigie/audit-venv
audit: $(STAMP) ## pip-audit of every installed package (exact versions), in a venv of its own; needs PyPI's or OSV's vulnerability data
	@[ -x $(AUDIT_VENV)/bin/pip-audit ] || { python3 -m venv $(AUDIT_VENV) && $(AUDIT_VENV)/bin/pip install -q 'pip-audit==2.10.1'; }
	$(VENV)/bin/pip freeze --exclude-editable > .vigie/audit-requirements.txt
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r .vigie/audit-requirements.txt

clean: ## remove local run data (.vigie/)
	rm -rf .vigie
