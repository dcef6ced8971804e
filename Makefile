# Everyday commands; the README, CI (.ci/run) and developers all use these.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-stamp
DEV := $(VENV)/.dev-stamp
# The image's own install (scripts/image-venv, which the Dockerfile runs): make e2e
# starts serve from it with the environment the chart renders.
IMAGE_VENV ?= .venv-image
IMAGE_STAMP := $(IMAGE_VENV)/.stamp
PYTEST_ARGS ?=
ARGS ?=
# The Go-built tools, built (or found in the cache) before pytest starts, so a first
# build shows its progress here and never runs inside a test's time limit.
HELM_ENV = helm="$$(scripts/install-helm)" && export KQS_HELM="$$helm" &&
KEDA_ENV = keda="$$(scripts/keda-tools)" && export KQS_KEDA_TOOLS="$$keda" &&

.DEFAULT_GOAL := help
.PHONY: help install install-dev image-venv peers demo-framework chaos fuzz slow run demo demo-real-keda test test-slow parity e2e e2e-cluster lint fmt check proto bench brokers helm chart clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(RUNTIME): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	@touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(DEV)

# The task frameworks the queueFormat tests compare with (tests/frameworks/): two
# Python venvs (arq and kombu need different redis-py), BullMQ from npm (package-lock),
# Sidekiq from Debian (scripts/install-brokers).
PEERS := .venv-peers
$(PEERS)/main/.stamp: tests/frameworks/requirements.txt
	$(PYTHON) -m venv $(PEERS)/main
	$(PEERS)/main/bin/pip install --quiet --no-deps -r tests/frameworks/requirements.txt
	@touch $@
$(PEERS)/arq/.stamp: tests/frameworks/requirements-arq.txt
	$(PYTHON) -m venv $(PEERS)/arq
	$(PEERS)/arq/bin/pip install --quiet --no-deps -r tests/frameworks/requirements-arq.txt
	@touch $@
tests/frameworks/bullmq/node_modules/.stamp: tests/frameworks/bullmq/package-lock.json
	cd tests/frameworks/bullmq && npm ci --silent --no-audit --no-fund
	@touch $@

install: $(RUNTIME)  ## create .venv with the scaler and its CLI only (pinned; what run and demo use)

install-dev: $(DEV)  ## add the test, lint and codegen tools to .venv (what test, lint, e2e use)

brokers:  ## install redis-server, rabbitmq-server and promtool if missing (tests start their own)
	scripts/install-brokers

run: install  ## start the scaler with defaults (gRPC :6000, metrics :9464); ARGS="--help"
	$(BIN)/keda-queue-scaler serve $(ARGS)

helm:  ## print the helm the tests use: helm v3.14+ on PATH, else the pinned one built once (go install)
	@scripts/install-helm

peers: brokers $(PEERS)/main/.stamp $(PEERS)/arq/.stamp tests/frameworks/bullmq/node_modules/.stamp  ## install the task frameworks the queueFormat tests compare with (Python venvs, BullMQ, Sidekiq)

test: install-dev brokers peers  ## run the test suite against real brokers it starts on loopback
	$(HELM_ENV) $(KEDA_ENV) $(BIN)/pytest $(PYTEST_ARGS)

test-slow: install-dev brokers peers  ## also run the slow soak/load tests
	$(HELM_ENV) $(KEDA_ENV) $(BIN)/pytest --run-slow $(PYTEST_ARGS)

slow: install-dev brokers  ## only the slow tests: soak with a broker restart, worst-case memory, the worker's chaos (CI runs them)
	$(BIN)/pytest --run-slow -m slow $(PYTEST_ARGS)

chaos: install-dev brokers  ## only the worker's chaos test: 2,000 items per broker (SQS: 800), workers killed at random (CI runs it in slow); ITEMS=, SEED=
	CHAOS_ITEMS="$(or $(ITEMS),2000)" CHAOS_SEED="$(or $(SEED),21)" $(BIN)/pytest --run-slow tests/integration/test_work_chaos.py -s $(PYTEST_ARGS)

fuzz: install-dev  ## the fuzz tests alone, longer (metadata, endpoint answers, refused networks): EXAMPLES= (default 20000; CI runs 800)
	KQS_FUZZ_EXAMPLES="$(or $(EXAMPLES),20000)" $(BIN)/pytest tests/integration/test_fuzz.py tests/integration/test_refused_networks.py -s $(PYTEST_ARGS)

parity: install-dev brokers peers  ## only the differential tests against KEDA's own Go code (needs Go); SCENARIOS=, SEED=
	$(KEDA_ENV) KQS_PARITY_SCENARIOS="$(or $(SCENARIOS),20000)" KQS_PARITY_SEED="$(or $(SEED),20261129)" \
	  $(BIN)/pytest tests/keda -m keda $(PYTEST_ARGS)

e2e-cluster:  ## build etcd, kube-apiserver, kube-controller-manager, KEDA's operator and metrics adapter from Go modules (cached)
	@scripts/e2e-cluster

$(IMAGE_STAMP): pyproject.toml constraints.txt scripts/image-venv $(shell find scaler -type f -not -path '*/__pycache__/*')
	scripts/image-venv $(IMAGE_VENV) $(PYTHON)
	@touch $@

image-venv: $(IMAGE_STAMP)  ## the container image's install (scripts/image-venv) in .venv-image, which make e2e serves from

e2e: install-dev brokers peers image-venv  ## end to end: the real KEDA operator, metrics adapter and HPA on a real API server, on loopback (builds them once)
	scripts/e2e-cluster >/dev/null
	$(HELM_ENV) KQS_IMAGE_VENV="$(IMAGE_VENV)" $(BIN)/pytest tests/e2e --run-e2e $(PYTEST_ARGS)

lint: install-dev  ## ruff (lint + format check) and mypy --strict on scaler/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install-dev  ## format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test  ## what CI runs

proto: install-dev  ## regenerate scaler/proto/ from proto/externalscaler.proto
	$(BIN)/python tools/genproto.py

demo: install  ## watch a burst of work turn into Jobs locally (Redis if installed); ARGS=...
	$(BIN)/keda-queue-scaler demo $(ARGS)

demo-framework: install brokers peers  ## demo with a task framework's own queue and burst worker: F=rq|arq|bullmq
	$(BIN)/keda-queue-scaler demo --queue-format "$(or $(F),rq)" \
	  --framework-python "$(CURDIR)/$(if $(filter arq,$(F)),$(PEERS)/arq/bin/python,$(PEERS)/main/bin/python)" \
	  --node-modules "$(CURDIR)/tests/frameworks/bullmq/node_modules" $(ARGS)

demo-real-keda: install-dev brokers  ## the demo with the real KEDA operator on a local API server (needs Go; builds once)
	scripts/e2e-cluster >/dev/null
	$(BIN)/keda-queue-scaler demo --real-keda $(ARGS)

bench: install-dev brokers  ## print RPC throughput next to a no-op grpc.aio server
	$(BIN)/python bench/rpc_throughput.py $(ARGS)

chart: install-dev  ## lint and template the Helm chart (what the chart tests check)
	KQS_HELM="$$(scripts/install-helm)" $(BIN)/pytest tests/chart $(PYTEST_ARGS)

clean:  ## remove the venv and caches
	rm -rf $(VENV) $(IMAGE_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
