# make demo   set up .venv if needed, then run the demo (CPU by default)
# make test   set up .venv if needed, then run the whole test suite
# make test-sanitize  the op and fuzz tests with the C++ built under ASan + UBSan (in a copy of
#                     the tree, so the normal build is left alone)
# make bench  the quick benchmark suite: the roofline table of `python -m bitkernels bench`
# make bench-full  every size 4K..64M, GPT-2 small's parameter list, and the pytest-benchmark suite
# (On a GPU machine whose python has CUDA torch and no network: bench/gpu_session.sh, which
#  builds in place and runs the tests and the full runner on cuda without any pip install.)
#
# TORCH picks the torch wheel. The default is the CPU build; on a CUDA machine use e.g.
# `make test TORCH=torch` (then the CUDA extension is built too).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bitkernels-installed
SOURCES := setup.py pyproject.toml requirements-dev.txt $(shell find csrc -type f)

.PHONY: setup demo test test-sanitize sanitize-build sanitize-run bench bench-full clean

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

# The sanitized build lives in a copy of the tracked tree (build/sanitize) and is imported from
# there through PYTHONPATH, ahead of the editable install of this tree in the same venv. Only the
# C++ is instrumented, so the Triton-interpreter cases are left out: they never reach it.
SANITIZE_TREE := build/sanitize
SANITIZE_TESTS := tests/test_steps.py tests/test_bitflip_stats.py tests/test_step_properties.py \
                  tests/test_fuzz.py tests/test_optim.py

test-sanitize: sanitize-build
	$(MAKE) sanitize-run

sanitize-build: setup
	rm -rf $(SANITIZE_TREE) && mkdir -p $(SANITIZE_TREE)
	git ls-files -z | xargs -0 cp --parents -t $(SANITIZE_TREE)
	cd $(SANITIZE_TREE) && BITKERNELS_SANITIZE=1 BITKERNELS_CUDA=0 \
	    $(abspath $(PY)) setup.py --quiet build_ext --inplace

# The tests against the sanitized build that sanitize-build made (.ci/run makes it while the
# test suite runs). Not the optimizer's step over 2^31 elements: once per ISA it took 2.3 of this
# run's 4.5 minutes under ASan (CI came within a minute of its 30); make test runs it, and
# bitflip_stats over 2^31 elements (18 s) still runs here.
sanitize-run:
	cd $(SANITIZE_TREE) && PYTHONPATH=. \
	    LD_PRELOAD="$$(g++ -print-file-name=libasan.so) $$(g++ -print-file-name=libubsan.so)" \
	    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(abspath $(PY)) -m pytest -q -p no:cacheprovider \
	    -k "not triton and not test_a_step_over_more_than_2_31_elements" $(SANITIZE_TESTS)

bench: setup
	mkdir -p reports
	$(PY) -m bitkernels bench --quick --json reports/bench-quick.json

bench-full: setup
	mkdir -p reports
	$(PY) -m bitkernels bench --full --json reports/bench-full.json
	$(PY) -m pytest bench --benchmark-only --benchmark-json=reports/pytest-bench.json

clean:
	rm -rf build *.egg-info bitkernels/*.so $(VENV)
