# `make gameday` runs the game day against the local lab; `make test` runs the tests.
# Both set up everything they need first (idempotent; a few seconds when done).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OS_PACKAGES := prometheus haproxy chromium iptables

.PHONY: setup gameday test lint bench clean os-packages

setup: os-packages $(STAMP)

os-packages:
	@./scripts/ensure-os-packages $(OS_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

gameday: setup
	$(BIN)/gameday run

test: setup
	$(BIN)/ruff check gameday probes actions lab tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m bench.run_all

lint: setup
	$(BIN)/ruff check gameday probes actions lab tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .lab reports
