# make demo   set up .venv if needed, then run the demo (CPU by default)
# make test   set up .venv if needed, then run the whole test suite
# make bench  the quick benchmark suite: the roofline table of `python -m bitkernels bench`
# make bench-full  every size 4K..64M, GPT-2 small's parameter list, and the pytest-benchmark suite
#
# TORCH picks the torch wheel. The default is the CPU build; on a CUDA machine use e.g.
# `make test TORCH=torch` (then the CUDA extension is built too).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bitkernels-installed
SOURCES := setup.py pyproject.toml requirements-dev.txt $(shell find csrc -type f)

.PHONY: setup demo test bench bench-full clean

setup: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH)" -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(PY) -m bitkernels demo

test: setup
	$(PY) -m pytest tests
	$(PY) -m pytest bench --benchmark-disable -q

bench: setup
	mkdir -p reports
	$(PY) -m bitkernels bench --quick --json reports/bench-quick.json

bench-full: setup
	mkdir -p reports
	$(PY) -m bitkernels bench --full --json reports/bench-full.json
	$(PY) -m pytest bench --benchmark-only --benchmark-json=reports/pytest-bench.json

clean:
	rm -rf build *.egg-info bitkernels/*.so $(VENV)
