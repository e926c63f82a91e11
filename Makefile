# `make gameday` runs the game day against the local lab; `make test` runs the tests.
# Both set up everything they need first (idempotent; a few seconds when done).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OS_PACKAGES := prometheus haproxy chromium iptables tmux

.PHONY: setup gameday gameday-quick test check lint bench soak clean os-packages go-components

setup: os-packages $(STAMP) go-components

# The Go programs the lab and the tests use (Toxiproxy's server; etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok for tests/lab/test_k8s_control_plane.py,
# with Chaos Mesh's CRDs fetched from the same proxy), built once per machine
# into ${XDG_CACHE_HOME:-~/.cache}/gameday/go from the Go module proxy (lab/gocomponents.py).
# A failed build is reported, not fatal: `make check` skips the tests needing them,
# `make test` fails them.
go-components: $(STAMP)
	@$(BIN)/python scripts/build-go-components

os-packages:
	@./scripts/ensure-os-packages $(OS_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# SERVICE=path/to/service.yaml runs the catalog against that service instead of the
# reference one (see README, "Testing your own service").
# The full game day: every experiment on the lab (.lab), then those that need the lab's
# replicas in network namespaces (tag netns: packet loss with iptables) on a second lab
# of that kind (.lab-netns, port base 18500), each started and stopped by the run.
NETNS_LAB := GAMEDAY_LAB_NETNS=1 GAMEDAY_LAB_DIR=.lab-netns GAMEDAY_LAB_PORT_BASE=18500
gameday: setup
	$(BIN)/gameday run --skip-tag netns $(if $(SERVICE),--service $(SERVICE))
	$(NETNS_LAB) $(BIN)/gameday run --tag netns --reports reports/netns \
		$(if $(SERVICE),--service $(SERVICE))

# The quick game day: the experiments tagged `quick`, one or two per family (~4 min).
gameday-quick: setup
	$(BIN)/gameday run --tag quick $(if $(SERVICE),--service $(SERVICE))

# The fast tier while working: lint, types, layers, unit and component tests (~2 min).
check: lint
	$(BIN)/pytest -q -n 2 tests/unit tests/component

# Everything: the README's and CI's command. First the unit and component tests (some
# measure timing, so they run on a quiet machine), then the whole-lab tests, several labs
# side by side: LAB_WORKERS (default 2) at once. A lab running an experiment takes about
# 0.8 of a core (200 orders/s), so more than two at once starve each other on 2 cores.
LAB_WORKERS ?= 2
test: export GAMEDAY_REQUIRE_GO_COMPONENTS = 1
test: lint
	$(BIN)/pytest -q -n 2 --durations=5 tests/unit tests/component
	$(BIN)/pytest -n $(LAB_WORKERS) --dist loadgroup --durations=40 tests/lab
	$(BIN)/pytest -n 0 --durations=10 tests/services

# wrk gives the closed-loop figures beside the open-model ones (installed here, for the
# bench only; set-up does not need it).
bench: setup
	@./scripts/ensure-os-packages wrk
	$(BIN)/python -m bench.run_all

# 10 minutes of random faults at 200 orders/s on a lab of its own (port base 20500):
# memory growth per process < 20 %, 0 orders lost or duplicated. Options: SOAK_ARGS.
soak: setup
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# ruff, mypy strict, and the import layers of docs/architecture.md (import-linter).
lint: setup
	$(BIN)/ruff check gameday probes actions controls lab tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .lab .lab-netns reports
