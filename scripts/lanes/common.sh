# Shared by the runtime lanes (scripts/tflite-runtime/lane.sh, scripts/python-versions/lane.sh): each
# runs tests/runtime + tests/target in venvs with only the runtime's requirements (no TensorFlow),
# on golden references exported once on the host's .venv. Sourced, not run; the caller sets
# REPO, CACHE_ROOT, HOST_PYTHON and LANE_NAME first.

die() { echo "error: $*" >&2; exit 2; }
log() { echo "[$LANE_NAME] $*" >&2; }

# ensure_venv NAME PYTHON REQUIREMENTS: a venv under the cache, rebuilt when its interpreter or
# requirements change.
ensure_venv() {
    local venv="$CACHE_ROOT/$1" python=$2 requirements=$3 key
    key="$("$python" -c 'import sys; print(sys.version.split()[0])') $requirements"
    if [ -f "$venv/.edge-sdk-requirements" ] && [ "$(cat "$venv/.edge-sdk-requirements")" = "$key" ]; then
        echo "$venv"
        return 0
    fi
    log "creating $venv: Python $key"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "could not create a venv with $python (python3-venv installed?)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $requirements >&2 || die "pip install $requirements failed"
    echo "$key" > "$venv/.edge-sdk-requirements"
    echo "$venv"
}

# build_wheel OUT: edge-sdk's wheel (pure Python) built with the host's pip, so the lane installs
# what a user's pip would.
build_wheel() {
    local out=$1 src
    src=$(mktemp -d)
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/edge_sdk" "$REPO/converters" "$REPO/training" "$src/"
    "$HOST_PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$src" >/dev/null 2>&1 \
        || die "building the edge-sdk wheel failed"
    rm -rf "$src"
    ls "$out"/edge_sdk-*.whl
}

# prepare_work WORK: the exported models (or a copy of EDGE_SDK_TEST_MODELS) and the runtime tests.
prepare_work() {
    local work=$1
    if [ -n "${EDGE_SDK_TEST_MODELS:-}" ]; then
        cp -r "$EDGE_SDK_TEST_MODELS" "$work/models"
    else
        log "exporting the runtime test models and golden references on the host (TensorFlow)"
        PYTHONPATH="$REPO" "$HOST_PYTHON" "$REPO/tests/target/export_models.py" "$work/models" >&2
    fi
    mkdir -p "$work/tests"
    # tests/data: the committed public model files some runtime and target tests read
    cp -r "$REPO/tests/conftest.py" "$REPO/tests/runtime" "$REPO/tests/target" "$REPO/tests/data" "$work/tests/"
    find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
}

run_tests() {  # run_tests VENV WORK [ENV=VALUE...]
    local venv=$1 work=$2
    shift 2
    (cd "$work" && env -u PYTHONPATH "$@" EDGE_SDK_TEST_MODELS="$work/models" \
        "$venv/bin/python" -m pytest tests/runtime tests/target -q -p no:cacheprovider -rxXs ${PYTEST_ARGS:-})
}

# lane_main "$@": the lane's commands, `test [ARGS...]` (the caller's cmd_test) and `clean`; the work
# folder a test run made (WORK_TO_REMOVE) goes on any exit, Ctrl-C included.
WORK_TO_REMOVE=""
lane_main() {
    trap 'if [ -n "$WORK_TO_REMOVE" ]; then rm -rf "$WORK_TO_REMOVE"; fi' EXIT
    trap 'exit 130' INT TERM
    case "${1:-}" in
        test) shift; cmd_test "$@" ;;
        clean) rm -rf "$CACHE_ROOT"; log "removed $CACHE_ROOT" ;;
        *) die "usage: $0 test${LANE_TEST_ARGS:+ $LANE_TEST_ARGS}|clean (got '${1:-}')" ;;
    esac
}
