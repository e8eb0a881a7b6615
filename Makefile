# sessiongate: two commands do everything on a fresh machine.
#   make run   - virtualenv, install, embedded PostgreSQL, migrate, demo app, serve
#   make test  - the whole suite: ruff, mypy, pytest (and the PostgreSQL 15 leg when present)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest pg15-test bench bench-inprocess clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sessiongate run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The SQL contract against Debian's PostgreSQL 15 (see tests/pg15.sh), so the
# "PostgreSQL 14+" claim is tested, not assumed, and the PostgREST conformance
# suite (tests/conformance), whose fixtures need pgcrypto and PostGIS.
# Skipped, loudly, without PostgreSQL 15.
pg15-test: $(STAMP)
	bash tests/pg15.sh $(BIN)/pytest -m "contract or conformance"

test: lint typecheck pytest pg15-test

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Python CPU per request with no sockets (bench/inprocess.py): a quick check
# of a change to the request path before `make bench`.
bench-inprocess: $(STAMP)
	$(BIN)/python -m bench.inprocess

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
