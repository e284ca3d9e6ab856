# Two commands do all the set-up on a fresh machine with Python 3.11+, pip and make:
#   make demo   - install everything into .venv and run the main job
#   make test   - install everything into .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DEV_STAMP := $(VENV)/.installed-dev

PACKAGES := -e . -e plugins/openrouter_gpt -e plugins/openrouter_claude -e plugins/openrouter_llama

.PHONY: install demo test bench mutate clean

$(STAMP): pyproject.toml plugins/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PACKAGES) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/openrouter-registry demo

test: $(STAMP)
	$(BIN)/python -m pytest

# the benchmark-only clients (the `bench` extra), installed once on top of the test environment
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_structured.py
	$(BIN)/python benchmarks/bench_concurrency.py
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/bench_faults.py
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_batch.py

# the sampled mutation check (tools/mutate.py; the `dev` extra): the core modules this branch changed
# since main, or MODULES="replies/decode.py batch/run.py"; ARGS="--sample 80 --seed 7" for more
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

mutate: $(DEV_STAMP)
	$(BIN)/python tools/mutate.py $(MODULES) $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info core/*.egg-info plugins/*/*.egg-info
