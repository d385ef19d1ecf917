# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-python android-deps android-test bench fuzz clean test-arm64 clean-arm64 test-tflite-runtime

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[convert,quantize,dev]'
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

## The runtime tests and x86 golden references on emulated Debian arm64 (qemu-user; needs root; cached rootfs).
test-arm64: $(STAMP)
	HOST_PYTHON=$(abspath $(BIN)/python) ./scripts/arm64/lane.sh test

## Remove the cached arm64 rootfs (under ~/.cache/edge-sdk/arm64).
clean-arm64:
	./scripts/arm64/lane.sh clean

## The runtime tests on tflite-runtime 2.14 + numpy<2 (own venvs under ~/.cache/edge-sdk/tflite-runtime).
test-tflite-runtime: $(STAMP)
	HOST_PYTHON=$(abspath $(BIN)/python) ./scripts/tflite-runtime/lane.sh test

clean:
	rm -rf out build dist *.egg-info .pytest_cache
