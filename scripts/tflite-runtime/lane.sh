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

die() { echo "error: $*" >&2; exit 2; }
log() { echo "[tflite-runtime] $*" >&2; }

# ensure_venv NAME REQUIREMENTS: a venv under the cache, rebuilt when its requirements change.
ensure_venv() {
    local venv="$CACHE_ROOT/$1" requirements=$2
    if [ -f "$venv/.edge-sdk-requirements" ] && [ "$(cat "$venv/.edge-sdk-requirements")" = "$requirements" ]; then
        echo "$venv"
        return 0
    fi
    log "creating $venv: $requirements"
    rm -rf "$venv"
    "$LANE_PYTHON" -m venv "$venv" || die "could not create a venv with $LANE_PYTHON (python3-venv installed?)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $requirements >&2 || die "pip install $requirements failed"
    echo "$requirements" > "$venv/.edge-sdk-requirements"
    echo "$venv"
}

build_wheel() {
    local out=$1 src
    src=$(mktemp -d)
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/edge_sdk" "$REPO/converters" "$REPO/training" "$src/"
    "$HOST_PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$src" >/dev/null 2>&1 \
        || die "building the edge-sdk wheel failed"
    rm -rf "$src"
    ls "$out"/edge_sdk-*.whl
}

run_tests() {  # run_tests VENV WORK [ENV=VALUE...]
    local venv=$1 work=$2
    shift 2
    (cd "$work" && env -u PYTHONPATH "$@" EDGE_SDK_TEST_MODELS="$work/models" \
        "$venv/bin/python" -m pytest tests/runtime tests/target -q -p no:cacheprovider -rxXs ${PYTEST_ARGS:-})
}

cmd_test() {
    local started work wheel tfl lit status=0
    started=$(date +%s)
    mkdir -p "$CACHE_ROOT"
    work=$(mktemp -d /tmp/edge-sdk-tflite-runtime-XXXXXX)
    WORK_TO_REMOVE=$work
    if [ -n "${EDGE_SDK_TEST_MODELS:-}" ]; then
        cp -r "$EDGE_SDK_TEST_MODELS" "$work/models"
    else
        log "exporting the runtime test models and golden references on the host (TensorFlow)"
        PYTHONPATH="$REPO" "$HOST_PYTHON" "$REPO/tests/target/export_models.py" "$work/models" >&2
    fi
    wheel=$(build_wheel "$work/dist")
    mkdir -p "$work/tests"
    # tests/data: the committed public model files some runtime and target tests read
    cp -r "$REPO/tests/conftest.py" "$REPO/tests/runtime" "$REPO/tests/target" "$REPO/tests/data" "$work/tests/"
    find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +

    tfl=$(ensure_venv tflite-only "$TFLITE_REQUIREMENTS")
    "$tfl/bin/pip" install --quiet --no-deps --force-reinstall "$wheel" >&2
    log "1/2 tflite-runtime only: $("$tfl/bin/python" -c 'import numpy, importlib.metadata as m; print("numpy", numpy.__version__, "tflite-runtime", m.version("tflite-runtime"))')"
    run_tests "$tfl" "$work" EDGE_SDK_TEST_BACKEND=tflite-runtime || status=$?

    lit=$(ensure_venv litert-numpy1 "$LITERT_REQUIREMENTS")
    "$lit/bin/pip" install --quiet --force-reinstall --no-deps "$wheel" >&2
    "$lit/bin/pip" check >&2 || die "pip check failed in $lit: the runtime's requirements conflict with numpy<2"
    log "2/2 ai-edge-litert on numpy 1.26: $("$lit/bin/python" -c 'import numpy, importlib.metadata as m; print("numpy", numpy.__version__, "ai-edge-litert", m.version("ai-edge-litert"))')"
    run_tests "$lit" "$work" || status=$?

    log "lane finished with exit $status in $(( $(date +%s) - started )) s"
    return $status
}

# Everything runs from main, read whole before it starts: editing this file mid-run is harmless.
WORK_TO_REMOVE=""
main() {
    trap 'if [ -n "$WORK_TO_REMOVE" ]; then rm -rf "$WORK_TO_REMOVE"; fi' EXIT
    trap 'exit 130' INT TERM
    case "${1:-}" in
        test) cmd_test ;;
        clean) rm -rf "$CACHE_ROOT"; log "removed $CACHE_ROOT" ;;
        *) die "usage: $0 test|clean (got '${1:-}')" ;;
    esac
}

{ main "$@"; exit $?; }
