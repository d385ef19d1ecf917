#!/usr/bin/env bash
# The second-Python lane (issue 27 item 2): the runtime tests on other CPython versions than the
# host's, with the newest numpy pip picks there and the runtime's own requirements from pyproject.toml.
#
#   lane.sh test [VERSION...]   for each VERSION (default: 3.12 3.13) find that interpreter, build its
#                               venv once (cached under ~/.cache/edge-sdk/python-versions), install the
#                               edge-sdk wheel, `pip check`, and run tests/runtime + tests/target
#   lane.sh clean               remove the cached venvs
#
# An interpreter is found as LANE_PYTHON_<MAJOR>_<MINOR> (e.g. LANE_PYTHON_3_12=/opt/py/bin/python3.12),
# then `pythonX.Y` on PATH (when it really runs: a pyenv shim for an inactive version does not), then
# pyenv's versions folder. A version that is not found fails the lane, naming where it looked, unless
# EDGE_SDK_LANE_ALLOW_MISSING=1 (CI sets it: the lane then says which version it skipped and why).
#
# Models and golden references come from tests/target/export_models.py, run once on the host's .venv
# (TensorFlow) and shared by every version; EDGE_SDK_TEST_MODELS=DIR reuses an export.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/edge-sdk/python-versions"
HOST_PYTHON="${HOST_PYTHON:-$REPO/.venv/bin/python}"
DEFAULT_VERSIONS="3.12 3.13"

LANE_NAME=python-versions
LANE_TEST_ARGS="[3.12 3.13 ...]"
# shellcheck source=../lanes/common.sh
. "$REPO/scripts/lanes/common.sh"

# find_python VERSION: the interpreter's path on stdout, or nothing (and where it looked on stderr).
find_python() {
    local version=$1 var candidate pyenv_root
    var="LANE_PYTHON_${version//./_}"
    if [ -n "${!var:-}" ]; then
        "${!var}" -c 'import sys' 2>/dev/null || die "$var=${!var} does not run"
        echo "${!var}"
        return 0
    fi
    candidate=$(command -v "python$version" || true)
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
        echo "$candidate"
        return 0
    fi
    pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    candidate=$(ls -d "$pyenv_root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
        echo "$candidate"
        return 0
    fi
    log "no Python $version: looked at \$$var, python$version on PATH and $pyenv_root/versions/$version.*"
}

# The runtime's requirements, read from pyproject.toml so the lane cannot drift from the package.
runtime_requirements() {
    (cd "$REPO" && "$HOST_PYTHON" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
}

cmd_test() {
    local started work wheel requirements python venv status=0 ran=0 skipped="" version entry
    local versions=("$@")
    [ ${#versions[@]} -gt 0 ] || read -r -a versions <<< "$DEFAULT_VERSIONS"
    started=$(date +%s)
    mkdir -p "$CACHE_ROOT"
    requirements="$(runtime_requirements) pytest cryptography"
    # Interpreters first: a missing one fails in a second, not after the export.
    local found=()
    for version in "${versions[@]}"; do
        [[ $version =~ ^3\.[0-9]+$ ]] || die "expected versions like 3.12, got '$version'"
        python=$(find_python "$version")
        if [ -z "$python" ]; then
            [ "${EDGE_SDK_LANE_ALLOW_MISSING:-0}" = 1 ] || die "Python $version not found (set LANE_PYTHON_${version//./_})"
            skipped="$skipped $version"
            continue
        fi
        found+=("$version=$python")
    done
    if [ ${#found[@]} -eq 0 ]; then
        log "SKIPPED: none of ${versions[*]} is on this machine; nothing tested"
        return 0
    fi
    work=$(mktemp -d /tmp/edge-sdk-python-versions-XXXXXX)
    WORK_TO_REMOVE=$work
    prepare_work "$work"
    wheel=$(build_wheel "$work/dist")
    for entry in "${found[@]}"; do
        version=${entry%%=*}
        python=${entry#*=}
        venv=$(ensure_venv "py$version" "$python" "$requirements")
        "$venv/bin/pip" install --quiet --no-deps --force-reinstall "$wheel" >&2
        "$venv/bin/pip" check >&2 || die "pip check failed in $venv: edge-sdk's requirements do not hold on Python $version"
        log "Python $version: $("$venv/bin/python" -c 'import sys, numpy, importlib.metadata as m; print(sys.version.split()[0], "numpy", numpy.__version__, "ai-edge-litert", m.version("ai-edge-litert"))')"
        run_tests "$venv" "$work" || status=$?
        ran=$((ran + 1))
    done
    [ -z "$skipped" ] || log "SKIPPED (not on this machine):$skipped"
    log "lane finished with exit $status in $(( $(date +%s) - started )) s; $ran Python version(s) tested"
    return $status
}

# Everything runs from main, read whole before it starts: editing this file mid-run is harmless.
{ lane_main "$@"; exit $?; }
