# make test / make audit work on a fresh machine from a clean clone: they create .venv,
# install the project, install the system packages the tests drive (Debian's prometheus and
# chromium), then run.
PYTHON ?= python3
comma := ,
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,perception,train
# The perception extra needs torch. Where a plain `pip install torch` would pull a multi-GB CUDA
# build, pin the CPU build that this machine image carries; users elsewhere keep the torch they
# have (an importable torch is never replaced).
TORCH_PIN ?= torch==2.13.0
NEEDS_TORCH ?= $(if $(or $(findstring perception,$(EXTRAS)),$(findstring train,$(EXTRAS))),1,0)
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
SYSTEM_PACKAGES := prometheus chromium adb espeak-ng

.PHONY: test test-fast audit install sysdeps lint bench dashboards k8s clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	if [ "$(NEEDS_TORCH)" = 1 ]; then $(BIN)/python -c "import torch" 2>/dev/null \
		|| $(BIN)/pip install -q "$(TORCH_PIN)"; fi
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

sysdeps:
	@./scripts/system-packages.sh $(SYSTEM_PACKAGES)

# Every tier (tests/README.md), then the 25 slowest tests; test-fast: the unit tier, which
# needs no system packages, in about two minutes.
test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q --durations=25 tests/unit tests/integration tests/e2e

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10 tests/unit

# The ground-truth quickstart (persona-stats policy), then the same personas played by the
# trained tiny agents on Ray Serve; the agents are trained on first run and cached.
audit: $(STAMP)
	$(BIN)/bubblescope audit examples/quickstart.yaml
	$(BIN)/bubblescope agents quickstart --job examples/quickstart-agent.yaml \
		--job-out results/quickstart-agent.yaml
	$(BIN)/bubblescope audit results/quickstart-agent.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/steps_per_second.py

dashboards: $(STAMP)
	$(BIN)/python -m bubblescope.metrics.dashboards deploy/grafana/dashboards/bubblescope.json

# The policy RayService's serveConfigV2 (k8s/base/policy-serve-config.yaml), from the agent job
# k8s/base/policy-job.yaml by serve up's builder; tests/integration/test_k8s_manifests.py checks it.
k8s: $(STAMP)
	$(BIN)/bubblescope k8s render-serve

clean:
	rm -rf $(VENV) results .pytest_cache
