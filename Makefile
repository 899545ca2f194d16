# The two commands: `make run` and `make test`. Both set themselves up through `make install`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras `make install` adds; CI (.ci/run) adds `scale` so that the Ray smoke test runs there.
EXTRAS ?= test
STAMP := $(VENV)/.install-stamp-$(EXTRAS)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run index test lint unit fuzz bench bench-ray clean

install: $(STAMP)

# torch first, pinned: it takes the CPU build from this machine; a bare `torch` pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

index/manifest.json: | $(STAMP)
	$(VENV)/bin/rag index corpus

index: install
	$(VENV)/bin/rag index

run: install index/manifest.json
	$(VENV)/bin/rag serve

lint: install
	$(VENV)/bin/ruff check rag tests app.py
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q -m "not slow and not browser"

test: install lint
	$(VENV)/bin/pytest -q

fuzz: install
	FUZZ_EXAMPLES=20000 $(VENV)/bin/pytest -q tests/test_fuzz.py

bench: install
	$(PY) -m pip install -q -e '.[test,bench,scale]'
	$(PY) bench/run.py

# The Ray build against the in-process build (chunks/s, same index): /tmp/ray-bench/result.json.
bench-ray: install
	$(PY) -m pip install -q -e '.[test,bench,scale]'
	$(PY) bench/ray_build.py

clean:
	rm -rf $(VENV) index .pytest_cache .mypy_cache .ruff_cache
