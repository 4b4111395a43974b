# Jupiter — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Compiled once up front: where PYTHONDONTWRITEBYTECODE is set (CI images),
# every `jupiter` subprocess a test starts would otherwise recompile the
# sources it imports.
# One pytest worker per core (pytest-xdist); a module's tests stay on one
# worker, so its module-scoped fixtures (fleets, servers, estates) build once.
PARALLEL ?= -n auto --dist loadfile
BYTECODE = $(BIN)/python -m compileall -q -j 0 src tests >/dev/null

.PHONY: install demo test soak lint bench clean services

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Jupiter with its dev tools (idempotent)

demo: install ## run Jupiter's main job on the embedded example
	@bash scripts/demo.sh

test: install ## run the test suite (services and scanners it needs are set up first)
	@bash scripts/services.sh
	@bash scripts/tools.sh
	@$(BYTECODE)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not soak" $(PARALLEL)

soak: install ## the heavier variants (marked soak): concurrency trials, every catalog fix through the full gate
	@bash scripts/services.sh
	@bash scripts/tools.sh
	@$(BYTECODE)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m soak $(PARALLEL)

lint: install ## ruff + mypy (strict on src/)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install ## benchmarks; each prints one JSON object
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/snapshot.py
	$(BIN)/python benchmarks/codemod.py
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/checked_write.py
	$(BIN)/python benchmarks/audit_keys.py
	$(BIN)/python benchmarks/iac.py
	$(BIN)/python benchmarks/cloudformation.py
	$(BIN)/python benchmarks/policy.py
	$(BIN)/python benchmarks/outbox.py
	$(BIN)/python benchmarks/fleet.py
	$(BIN)/python benchmarks/fleet_ssh.py
	$(BIN)/python benchmarks/judge.py
	$(BIN)/python benchmarks/api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
