# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint test-python-versions android-deps android-test bench fuzz clean test-arm64 clean-arm64 test-tflite-runtime

# onnx2tf (ONNX input, converters/onnx_import.py) pins TensorFlow 2.19 and numpy 1.26: it goes into a side
# folder with --no-deps, beside the venv's site-packages, so the venv's `pip check` stays clean.
ONNX2TF_DIR := $(VENV)/onnx2tf
ONNX2TF_PKGS := onnx2tf==1.29.24 onnx-graphsurgeon==0.6.1 sng4onnx==2.0.1 sne4onnx==2.0.1 psutil==7.2.2 onnxsim==0.8.1

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[convert,quantize,dev]'
	$(BIN)/pip check
	rm -rf $(ONNX2TF_DIR)
	$(BIN)/pip install --quiet --no-deps --target $(ONNX2TF_DIR) $(ONNX2TF_PKGS)
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP)

## The main job on the built-in default: train, prune, distill, int8-quantize, validate parity, benchmark.
demo: $(STAMP)
	$(BIN)/edge-sdk demo --out out/demo

## The whole test suite: Python tests (which include the Android core's JUnit tests and the native LiteRT check).
test: $(STAMP) android-deps
	$(BIN)/pytest tests

## Lint, format check and type check (ruff and mypy; their settings are in pyproject.toml). CI runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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

## The runtime tests on Python 3.12 and 3.13 with the newest numpy (own venvs under ~/.cache/edge-sdk/python-versions);
## VERSIONS="3.12" picks some. Interpreters come from PATH or pyenv (scripts/python-versions/lane.sh says how).
test-python-versions: $(STAMP)
	HOST_PYTHON=$(abspath $(BIN)/python) ./scripts/python-versions/lane.sh test $(VERSIONS)

clean:
	rm -rf out build dist *.egg-info .pytest_cache
