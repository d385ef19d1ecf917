"""Fixtures: small real models converted with TensorFlow, built once per session.

Two environment variables let the same tests run on a device-like environment without TensorFlow
(the aarch64 and tflite-runtime lanes of issue 16, see docs/benchmarks.md):

* ``EDGE_SDK_TEST_MODELS=DIR``: use the models ``tests/target/export_models.py`` wrote into DIR
  instead of building them with TensorFlow;
* ``EDGE_SDK_TEST_BACKEND=NAME``: run every automatic ``edge_sdk.load`` on that backend
  (``tflite-runtime``), and mark the tests bound to LiteRT as expected failures with the reason.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


TEST_BACKEND = os.environ.get("EDGE_SDK_TEST_BACKEND") or None

#: Tests that check LiteRT itself, or LiteRT-only pieces, and why they cannot pass on another backend
#: ("file.py" marks a whole file). Measured with tflite-runtime 2.14 in `make test-tflite-runtime`.
_NO_SCHEMA = "edge-sdk inspect reads ai-edge-litert's flatbuffer schema; tflite-runtime ships none (a clear error)"
LITERT_BOUND = {
    "test_inspect.py": _NO_SCHEMA,
    "test_cli.py::test_inspect_table_and_json": _NO_SCHEMA,
    "test_light_runtime.py::test_cli_inspect_run_help_without_tensorflow": _NO_SCHEMA,
    "test_errors.py::test_manifest_mismatch_is_refused_unless_verify_false": "finds weights with LiteRT's schema",
    "test_errors.py::test_truncated_file_is_corrupt": "tflite-runtime dies with SIGSEGV on this truncated file; "
    "isolation refuses it (tests/target/test_tflite_runtime.py)",
    "test_model.py::test_float_predict_equals_direct_interpreter": "compares with a bare LiteRT interpreter",
    "test_model.py::test_quantized_predict_equals_direct_interpreter": "compares with a bare LiteRT interpreter",
    "test_model.py::test_backend_by_name": "asks for backend='litert' by name",
    "test_model.py::test_specs_are_typed_records": "expects the default backend litert",
    "test_light_runtime.py::test_import_load_predict_without_tensorflow": "expects the default backend litert",
    "test_accelerator.py": "accelerator= is LiteRT's CompiledModel (tflite-runtime: a clear BackendUnavailableError)",
    "test_fast_path.py::test_fast_path_equals_bare_interpreter_on_awkward_values": "compares with a bare LiteRT "
    "interpreter",
    "test_fast_path.py::test_thirteen_one_value_inputs_equal_bare_interpreter": "compares with a bare LiteRT "
    "interpreter",
    "test_fast_path.py::test_float_tabular_model_fast_path": "compares with a bare LiteRT interpreter",
    "test_fast_path.py::test_model_pool_gives_every_model_the_load_settings": "asks for backend='litert' by name",
    "test_one_value_rounding.py::test_array_input_with_an_odd_zero_point_stores_what_quantize_gives": "rewrites the model with ai-edge-litert's flatbuffer_utils",
}


def pytest_collection_modifyitems(config, items):
    """On another backend, LiteRT-bound tests are expected failures that say why."""
    if TEST_BACKEND in (None, "litert"):
        return
    for item in items:
        file = Path(str(item.fspath)).name
        named = LITERT_BOUND.get(f"{file}::{item.originalname}")
        reason = named or LITERT_BOUND.get(file)
        if reason:  # a whole file may hold a test that passes anyway: only named tests are strict
            item.add_marker(pytest.mark.xfail(reason=f"LiteRT-bound on {TEST_BACKEND}: {reason}", strict=bool(named)))


@pytest.fixture(autouse=True)
def _chosen_backend(monkeypatch):
    """With EDGE_SDK_TEST_BACKEND, an automatic backend choice means that backend and nothing else."""
    if TEST_BACKEND is not None:
        import edge_sdk.backends

        edge_sdk.backends.get_backend(TEST_BACKEND)  # a clear BackendUnavailableError when not installed
        monkeypatch.setattr(edge_sdk.backends, "AUTO_ORDER", (TEST_BACKEND,))


@pytest.fixture(scope="session")
def runtime_models(exported_models_dir):
    """name -> path of real .tflite models: float32, int8, uint8, fixed_batch, two_inputs, stateful,
    tabular_float32/tabular_int8 (13 one-value inputs), and x/y (.npy digits samples)."""
    index = exported_models_dir / "models.json"
    if not index.is_file():
        pytest.exit(f"EDGE_SDK_TEST_MODELS={exported_models_dir}: expected {index} (tests/target/export_models.py)", 2)
    return {name: exported_models_dir / file for name, file in json.loads(index.read_text()).items()}


@pytest.fixture(scope="session")
def digits_x(runtime_models):
    """32 digits images, NHWC float32 in [0, 1]."""
    return np.load(runtime_models["x"])
