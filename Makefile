# Two commands do everything on a fresh machine:
#   make run    the whole system on SQLite, migrated, with the demo county loaded
#   make test   lint, types, import contracts and the test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint openapi clean install bench

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(BIN)/python deploy/local.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

openapi: install
	$(BIN)/python openapi/generate.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Speed is measured here, never by timed unit tests.
bench: install
	$(BIN)/python bench/triage.py --seconds 5 --json bench/results/triage.json
	$(BIN)/python bench/webhooks.py --json bench/results/webhooks.json
	$(BIN)/python bench/e2e.py
