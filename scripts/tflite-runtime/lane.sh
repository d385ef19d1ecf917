#!/usr/bin/env bash
# The tflite-runtime lane (issue 16): the runtime tests on tflite-runtime 2.14 and numpy 1.26.
#
#   lane.sh test     build the venvs once (cached by their requirements), then run
#                    1. tests/runtime + tests/target with EDGE_SDK_TEST_BACKEND=tflite-runtime in a venv
#                       that has tflite-runtime and numpy<2 and NOT ai-edge-litert (a device with only it);
#                    2. tests/runtime + tests/target on ai-edge-litert with numpy 1.26 (the runtime's
#                       requirements installed the way pip resolves them under numpy<2), which also runs
#                       the side-by-side tflite-runtime vs LiteRT checks of tests/target.
#   lane.sh clean    remove the cached venvs
#
# Models and golden references come from tests/target/export_models.py, run on the host's .venv
# (TensorFlow); EDGE_SDK_TEST_MODELS=DIR reuses an export.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/edge-sdk/tflite-runtime"
HOST_PYTHON="${HOST_PYTHON:-$REPO/.venv/bin/python}"
LANE_PYTHON="${LANE_PYTHON:-python3}"
TFLITE_REQUIREMENTS="tflite-runtime==2.14.0 numpy<2 pytest cryptography"
LITERT_REQUIREMENTS="ai-edge-litert==2.3.0 tflite-runtime==2.14.0 numpy<2 pytest cryptography"

LANE_NAME=tflite-runtime
# shellcheck source=../lanes/common.sh
. "$REPO/scripts/lanes/common.sh"

cmd_test() {
    local started work wheel tfl lit status=0
    started=$(date +%s)
    mkdir -p "$CACHE_ROOT"
    work=$(mktemp -d /tmp/edge-sdk-tflite-runtime-XXXXXX)
    WORK_TO_REMOVE=$work
    prepare_work "$work"
    wheel=$(build_wheel "$work/dist")

    tfl=$(ensure_venv tflite-only "$LANE_PYTHON" "$TFLITE_REQUIREMENTS")
    "$tfl/bin/pip" install --quiet --no-deps --force-reinstall "$wheel" >&2
    log "1/2 tflite-runtime only: $("$tfl/bin/python" -c 'import numpy, importlib.metadata as m; print("numpy", numpy.__version__, "tflite-runtime", m.version("tflite-runtime"))')"
    run_tests "$tfl" "$work" EDGE_SDK_TEST_BACKEND=tflite-runtime || status=$?

    lit=$(ensure_venv litert-numpy1 "$LANE_PYTHON" "$LITERT_REQUIREMENTS")
    "$lit/bin/pip" install --quiet --force-reinstall --no-deps "$wheel" >&2
    "$lit/bin/pip" check >&2 || die "pip check failed in $lit: the runtime's requirements conflict with numpy<2"
    log "2/2 ai-edge-litert on numpy 1.26: $("$lit/bin/python" -c 'import numpy, importlib.metadata as m; print("numpy", numpy.__version__, "ai-edge-litert", m.version("ai-edge-litert"))')"
    run_tests "$lit" "$work" || status=$?

    log "lane finished with exit $status in $(( $(date +%s) - started )) s"
    return $status
}

# Everything runs from main, read whole before it starts: editing this file mid-run is harmless.
{ lane_main "$@"; exit $?; }
