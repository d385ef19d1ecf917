"""tflite-runtime 2.14, the compatibility backend: its known limits as tested behaviour.

Runs where tflite-runtime is installed (`make test-tflite-runtime`); skipped elsewhere. Limits
measured in that lane: no dynamic-range FULLY_CONNECTED v12 (a clear error), crashes on corrupt
files (isolation refuses them and the caller survives), no ``edge-sdk inspect`` without LiteRT's
schema (a clear error), int8 on builtin kernels instead of XNNPACK.
"""

import subprocess
import sys

import numpy as np
import pytest

import edge_sdk
from edge_sdk import errors

pytest.importorskip("tflite_runtime.interpreter", reason="tflite-runtime is not installed (make test-tflite-runtime)")

BACKEND = "tflite-runtime"


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_dynamic_range_fully_connected_v12_is_a_clear_error(target_models):
    with pytest.raises(errors.CorruptModelError, match=r"FULLY_CONNECTED' version '12'.*pip install ai-edge-litert"):
        edge_sdk.load(target_models["dynamic_range"], backend=BACKEND)
    done = cli("run", target_models["dynamic_range"], "--backend", BACKEND, "--input", target_models["x"])
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_other_models_match_litert_within_a_step_or_run_alone(target_models):
    x = np.load(target_models["x"])
    for name in ("float32", "int8", "uint8", "float16", "fixed_batch"):
        model = edge_sdk.load(target_models[name], backend=BACKEND, num_threads=1)
        assert model.backend == BACKEND
        got = model.predict(x, raw=True)
        try:
            litert = edge_sdk.load(target_models[name], backend="litert", num_threads=1)
        except errors.BackendUnavailableError:
            assert got.shape == (len(x), 10) and np.all(np.isfinite(got.astype(np.float64)))
            continue
        want = litert.predict(x, raw=True)
        if want.dtype.kind in "iu":  # builtin int8 kernels vs XNNPACK: measured 1 step here
            assert np.max(np.abs(want.astype(np.int64) - got)) <= 2, name
        else:
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=name)


def _corrupt_variants(data: bytes):
    """Deterministic damage: truncations and flipped bytes in the flatbuffer's tables (not the weights)."""
    for fraction in (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9):
        yield f"truncated to {fraction:.0%}", data[: int(len(data) * fraction)]
    rng = np.random.default_rng(0)
    for case in range(8):
        damaged = bytearray(data)
        for offset in rng.integers(16, min(len(data), 2048), size=4):
            damaged[int(offset)] ^= 0xFF
        yield f"4 bytes flipped (case {case})", bytes(damaged)


def test_isolation_survives_files_that_crash_tflite_runtime(target_models):
    data = target_models["int8"].read_bytes()
    crashed, outcomes = [], {}
    for what, damaged in _corrupt_variants(data):
        try:
            edge_sdk.load(damaged, backend=BACKEND)  # isolate=True is this backend's default
            outcomes[what] = "loaded"
        except errors.EdgeSdkError as exc:
            outcomes[what] = type(exc).__name__
            if "crashed the tflite-runtime interpreter" in str(exc):
                crashed.append(what)
    # Some of these kill tflite-runtime with SIGSEGV (it reads past the end of the buffer, so which ones
    # varies from run to run); we are still here to count them.
    assert crashed, outcomes
    assert edge_sdk.load(data, backend=BACKEND).predict(np.load(target_models["x"])[:2]).shape == (2, 10)


def test_without_isolation_the_crash_takes_the_process_down(target_models, tmp_path):
    """Why isolate=True is tflite-runtime's default: damaged files loaded and run in-process kill it."""
    codes = {}
    for case, (what, damaged) in enumerate(_corrupt_variants(target_models["int8"].read_bytes())):
        path = tmp_path / f"case{case}.tflite"
        path.write_bytes(damaged)
        code = (
            f"import numpy as np, edge_sdk; m = edge_sdk.load({str(path)!r}, backend={BACKEND!r}, "
            "isolate=False, verify=False); m.predict(np.zeros((1, 8, 8, 1), np.float32)); print('survived')"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        codes[what] = done.returncode
    assert any(code < 0 for code in codes.values()), codes  # killed by a signal, no Python error to catch
    assert edge_sdk.backends.get_backend(BACKEND).crash_prone


def test_inspect_without_litert_is_a_clear_error(target_models):
    try:
        import ai_edge_litert  # noqa: F401 - imported only to learn whether it is installed

        pytest.skip("ai-edge-litert is installed here: inspect has its schema")
    except ImportError:
        pass
    done = cli("inspect", target_models["int8"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: edge-sdk inspect reads the model with ai-edge-litert's flatbuffer schema, "
        "which is not installed (tflite-runtime has none): pip install ai-edge-litert"
    )
