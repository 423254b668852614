# Two commands do everything on a fresh machine:
#   make run    the whole system on SQLite, migrated, with the demo county loaded
#   make test   lint, types, import contracts and the test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Every package at the exact version and with the hashes recorded here (make lock refreshes it).
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
# The console's front-end packages, from package-lock.json (each checked against its integrity
# hash), and the files of them spa serves, copied into the package beside its own.
VENDOR := services/spa/console/static/vendor
ASSETS := node_modules/.console-assets-$(shell cat package-lock.json deploy/console_assets.sh | cksum | cut -d' ' -f1)

.PHONY: run demo-clients demo-curls test lint openapi clean install lock bench tools assets

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

$(ASSETS): package.json package-lock.json deploy/console_assets.sh
	bash deploy/console_assets.sh $(VENDOR)
	rm -f node_modules/.console-assets-*
	touch $@

# The locked packages first, each checked against its hash, then the project itself (built with
# the locked setuptools, pulling in nothing further).
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# After changing the dependencies in pyproject.toml (a test fails while the two disagree): the
# lock for every platform and Python from 3.11, keeping the versions already locked that
# pyproject.toml still allows; `make lock LOCK_FLAGS=--upgrade` takes the newest of everything.
LOCK_FLAGS ?=
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --quiet $(LOCK_FLAGS) -o $(LOCK)

# DIRECTORY=file.yaml chooses the directory; RELOAD_DIRECTORY=1 loads it over changes made since
# the last load (otherwise kept, and said so).
run: install
	$(BIN)/python deploy/local.py

# The demo clients with their secrets (kept in var/), and a curl for every channel.
demo-clients: install
	@$(BIN)/python deploy/local.py --show-clients

demo-curls: install
	@$(BIN)/python deploy/local.py --curl

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

# Debian packages the tests use beyond Python (HAProxy for the replica test, Chromium for the
# console's browser tests).
tools:
	bash tests/install-tools.sh

test: lint tools
	$(BIN)/pytest

openapi: install
	$(BIN)/python openapi/generate.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules $(VENDOR) test-output

# Speed is measured here, never by timed unit tests.
bench: install tools
	$(BIN)/python bench/triage.py --seconds 5 --json bench/results/triage.json
	$(BIN)/python bench/webhooks.py --json bench/results/webhooks.json
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/replicas.py
