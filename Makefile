# platformdb — the two commands are `make demo` and `make test`; both set everything up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PDB := $(VENV)/bin/platformdb
STAMP := $(VENV)/.installed

.PHONY: setup system demo test lint bench chaos clean dev-down

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(PDB) dev up
	$(PDB) demo
	@echo
	@echo "Embedded database: $$($(PDB) dev url)"
	@echo "  psql \"$$($(PDB) dev url)\""

# the migrations must pass the ground rules before anything else runs (CI refuses them otherwise)
test: setup
	$(PDB) lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PDB) lint
	$(PDB) security-doc --check

bench: setup
	$(PY) bench/run_all.py

chaos: setup
	$(PY) -m pytest -q tests/chaos

dev-down:
	-$(PDB) dev down

clean:
	rm -rf $(VENV) .platformdb
