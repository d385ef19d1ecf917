# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-python android-deps android-test bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[convert,dev]'
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP)

## The main job on the built-in default: train, prune, distill, int8-quantize, validate parity, benchmark.
demo: $(STAMP)
	$(BIN)/edge-sdk demo --out out/demo

## The whole test suite: Python tests (which include the Android core's JUnit tests and the native LiteRT check).
test: $(STAMP) android-deps
	$(BIN)/pytest tests

## Debian packages for the Android core's offline Maven build and the native check (needs root or sudo).
android-deps:
	./scripts/install-debian-deps.sh

android-test: $(STAMP) android-deps
	$(MAKE) -C android_demo test PYTHON=$(abspath $(BIN)/python)

## Latency benchmark suite (pytest-benchmark); writes benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf out build dist *.egg-info .pytest_cache
