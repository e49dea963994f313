# platformdb — the two commands are `make demo` and `make test`; both set everything up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PDB := $(VENV)/bin/platformdb
STAMP := $(VENV)/.installed
# test processes (pytest-xdist): one per core, at most 4; each starts its own PostgreSQL cluster
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: setup system demo test lint bench chaos citus clean dev-down

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# fills the embedded database, then serves the dashboard (with a trickle of live activity)
# and a worker draining the demo's queues until Ctrl-C
demo: setup
	$(PDB) dev up
	$(PDB) demo
	@echo
	@echo "Embedded database: $$($(PDB) dev url)"
	@echo "  psql \"$$($(PDB) dev url)\""
	@echo "Worker log: $${PLATFORMDB_HOME:-.platformdb}/demo-worker.log   (Ctrl-C stops the dashboard and the worker)"
	@mkdir -p "$${PLATFORMDB_HOME:-.platformdb}"; \
	$(PDB) worker --app platformdb.dashboard.demo_worker --grace 5 \
	    > "$${PLATFORMDB_HOME:-.platformdb}/demo-worker.log" 2>&1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PDB) dashboard --host 127.0.0.1 --port 8050 --demo-traffic

# the migrations must pass the ground rules before anything else runs (CI refuses them otherwise)
test: setup
	$(PDB) lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS)

lint: setup
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy
	$(PDB) lint
	$(PDB) security-doc --check

bench: setup
	$(PY) bench/run_all.py

# the reliability figures (docs/reliability.md): the chaos scenarios at full size and the deep
# fuzz (smoke versions of both run in `make test`), then the pgbench load run; ~15 minutes
chaos: setup
	PLATFORMDB_CHAOS=full $(PY) -m pytest -q -p no:cacheprovider tests/chaos tests/fuzz
	$(PY) bench/load.py

# every capability's tests, the security matrix and verify on a Citus cluster (coordinator + 2
# workers on loopback; docs/scaling.md). Opt-in: Citus from its packages, or built from an
# extracted source tree: `make citus CITUS_SRC=/path/to/citus`
citus: setup
	CITUS_SRC="$(CITUS_SRC)" bash scripts/citus.sh

dev-down:
	-$(PDB) dev down

clean:
	rm -rf $(VENV) .platformdb
