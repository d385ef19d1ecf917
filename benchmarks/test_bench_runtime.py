"""What the runtime wrapper costs: Model.predict against the bare interpreter, and import time.

Run: .venv/bin/pytest benchmarks/test_bench_runtime.py --benchmark-only -p no:randomly
Goals (issue #2): the wrapper adds <= 10 us per call at the median, including
quantize and dequantize; `import edge_sdk` in a fresh process takes <= 0.3 s.
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))

import edge_sdk  # noqa: E402
from edge_sdk.quant import quantize  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from runtime_model_factory import build_models

    out = tmp_path_factory.mktemp("bench_runtime")
    paths = build_models(out)
    return paths, np.load(out / "x.npy")[:1]


def bare_call(path, x):
    """A bare interpreter call: set_tensor, invoke, get_tensor, on pre-quantized data."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    if inp["dtype"] != np.float32:
        x = quantize(x, *inp["quantization"], inp["dtype"])
    index_in, index_out = inp["index"], out["index"]

    def call():
        interpreter.set_tensor(index_in, x)
        interpreter.invoke()
        return interpreter.get_tensor(index_out)

    return call


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_bare_interpreter(benchmark, models, kind):
    paths, x = models
    benchmark.group = f"runtime-overhead-{kind}"
    benchmark(bare_call(paths[kind], x))


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_model_predict(benchmark, models, kind):
    paths, x = models
    model = edge_sdk.load(paths[kind], num_threads=1)
    benchmark.group = f"runtime-overhead-{kind}"
    benchmark(model.predict, x)


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_overhead_ratio_side_by_side(models, kind):
    """Interleaved rounds of both, so machine noise hits each alike; report the median difference."""
    paths, x = models
    bare = bare_call(paths[kind], x)
    model = edge_sdk.load(paths[kind], num_threads=1)
    diffs = []
    for _ in range(200):
        t0 = time.perf_counter_ns()
        for _ in range(50):
            bare()
        t1 = time.perf_counter_ns()
        for _ in range(50):
            model.predict(x)
        t2 = time.perf_counter_ns()
        diffs.append(((t2 - t1) - (t1 - t0)) / 50 / 1000)
    median = statistics.median(diffs)
    print(f"\n{kind}: Model.predict adds {median:.2f} us per call at the median "
          f"(p90 {statistics.quantiles(diffs, n=10)[-1]:.2f} us)")
    assert median <= 10.0


def test_many_one_value_inputs_side_by_side(tmp_path):
    """13 one-value inputs (the Wide & Deep shape): int8 predict quantizes each in Python, float does not."""
    from ai_edge_litert.interpreter import Interpreter
    from runtime_model_factory import build_tabular_models

    paths = build_tabular_models(tmp_path)
    row = {f"f{i}": np.array([[0.1 * i - 0.5]], np.float32) for i in range(13)}
    calls = {}
    for kind in ("float32", "int8"):
        model = edge_sdk.load(paths[f"tabular_{kind}"], num_threads=1)
        interpreter = Interpreter(model_path=str(paths[f"tabular_{kind}"]), num_threads=1)
        interpreter.allocate_tensors()
        feeds = []
        for detail in interpreter.get_input_details():
            value = row[detail["name"].split(":")[0].replace("serving_default_", "")]
            if detail["dtype"] != np.float32:
                value = quantize(value, *detail["quantization"], detail["dtype"])
            feeds.append((detail["index"], value))
        out_index = interpreter.get_output_details()[0]["index"]

        def bare(interpreter=interpreter, feeds=feeds, out_index=out_index):
            for index, value in feeds:
                interpreter.set_tensor(index, value)
            interpreter.invoke()
            return interpreter.get_tensor(out_index)

        calls[kind] = (bare, lambda model=model: model.predict(row))
    added = {kind: [] for kind in calls}
    for _ in range(100):  # interleaved: noise hits every variant alike
        for kind, (bare, wrapped) in calls.items():
            t0 = time.perf_counter_ns()
            for _ in range(20):
                bare()
            t1 = time.perf_counter_ns()
            for _ in range(20):
                wrapped()
            t2 = time.perf_counter_ns()
            added[kind].append(((t2 - t1) - (t1 - t0)) / 20 / 1000)
    median = {kind: statistics.median(values) for kind, values in added.items()}
    print(f"\n13 one-value inputs: Model.predict adds {median['float32']:.1f} us (float32) and "
          f"{median['int8']:.1f} us (int8, quantizing 13 inputs and dequantizing 1) per call at the median")
    assert median["int8"] <= 40.0  # 13 ufunc-path quantizations cost about 60 us here before the scalar path


def test_import_time():
    """`import edge_sdk` in fresh processes; median of 7."""
    code = "import time; t = time.perf_counter(); import edge_sdk; print(time.perf_counter() - t)"
    times = sorted(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout) for _ in range(7))
    median = times[3]
    print(f"\nimport edge_sdk: median {median * 1000:.1f} ms over 7 fresh processes")
    assert median <= 0.3
