# `make gameday` runs the game day against the local lab; `make test` runs the tests.
# Both set up everything they need first (idempotent; a few seconds when done).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OS_PACKAGES := prometheus haproxy chromium iptables

.PHONY: setup gameday test lint bench soak clean os-packages

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

# 10 minutes of random faults at 200 orders/s on a lab of its own (port base 20500):
# memory growth per process < 20 %, 0 orders lost or duplicated. Options: SOAK_ARGS.
soak: setup
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: setup
	$(BIN)/ruff check gameday probes actions lab tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .lab reports
