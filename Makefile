# Set-up on a fresh machine with Python 3.11+, pip and make:
#   make demo   - install the library and its three plugins into .venv (seconds), then run the demo
#   make test   - install the test toolchain too, then run the whole test suite
#   make docs   - install the docs toolchain, then build the docs site (mkdocs build --strict) into site/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# what the demo needs: the core and the plugins, nothing else
CORE_STAMP  := $(VENV)/.installed-core
# + the `test` extra (pytest, hypothesis, mypy, Parlant...): everything the test suite needs
STAMP       := $(VENV)/.installed
DOCS_STAMP  := $(VENV)/.installed-docs
BENCH_STAMP := $(VENV)/.installed-bench
DEV_STAMP := $(VENV)/.installed-dev

PACKAGES := -e . -e plugins/openrouter_gpt -e plugins/openrouter_claude -e plugins/openrouter_llama

.PHONY: install demo test docs bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setuptools once in .venv, then the four builds without isolation: each isolated build would
# install setuptools again in a temporary environment (most of the install's time)
$(CORE_STAMP): pyproject.toml plugins/*/pyproject.toml | $(BIN)/python
	$(PIP) "setuptools>=77"
	$(PIP) --no-build-isolation $(PACKAGES)
	touch $(CORE_STAMP)

$(STAMP): $(CORE_STAMP)
	$(PIP) --no-build-isolation -e ".[test]"
	touch $(STAMP)

# the development environment: the core, the plugins and the test toolchain
install: $(STAMP)

demo: $(CORE_STAMP)
	$(BIN)/openrouter-registry demo

test: $(STAMP)
	$(BIN)/python -m pytest

$(DOCS_STAMP): $(CORE_STAMP)
	$(PIP) --no-build-isolation -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the benchmark-only clients (the `bench` extra), installed once on top of the test environment
$(BENCH_STAMP): $(STAMP)
	$(PIP) --no-build-isolation -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_structured.py
	$(BIN)/python benchmarks/bench_concurrency.py
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/bench_faults.py
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_parlant_cost.py

# the sampled mutation check (tools/mutate.py; the `dev` extra): the core modules this branch changed
# since main, or MODULES="replies/decode.py batch/run.py"; ARGS="--sample 80 --seed 7" for more
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

mutate: $(DEV_STAMP)
	$(BIN)/python tools/mutate.py $(MODULES) $(ARGS)

clean:
	rm -rf $(VENV) build site *.egg-info core/*.egg-info plugins/*/*.egg-info
