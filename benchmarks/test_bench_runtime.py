"""What the runtime wrapper costs: Model.predict against the bare interpreter (issue #15), and import time.

Run: .venv/bin/pytest benchmarks/test_bench_runtime.py -p no:randomly -s
(`benchmarks/overhead.py` prints the same figures as a table.)

Every assertion is a ratio of medians measured side by side in one process -
the bare interpreter (``set_tensor`` per input, ``invoke``, ``get_tensor``, on
data already in the storage dtype) interleaved with ``Model.predict`` on the
same model file, 1 thread, batch 1 - never an absolute time, so a loaded
machine slows both sides alike. The targets are issue #15's (``overhead.TARGETS``,
which ``overhead.py`` prints as met or MISSED); the asserts allow ``SLACK`` above
each, because under load the Python and numpy work around ``invoke`` inflates
more than ``invoke`` itself (measured on the shared 2-core machine at load
average 6-9: CNN int8 predict(float) 1.13-1.23x against its 1.30x target,
13 one-value inputs 1.36-1.40x against 1.60x, float32 models up to 1.07x
against 1.10x; at load average 10 one run in three read the 13-input case at 1.85x, when
the bare call's median fell in its fast mode). ``make test`` does not run this directory.
"""

import statistics
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead  # noqa: E402 - importable only after the sys.path insert above
import overhead_models  # noqa: E402 - as above

#: How far above its issue #15 target a ratio may land before the test fails: a loaded CI machine's margin.
SLACK = 0.10


@pytest.fixture(scope="module")
def ratios(tmp_path_factory):
    """Every case of benchmarks/overhead.py, measured once, interleaved."""
    directory = tmp_path_factory.mktemp("overhead_models")
    paths = overhead_models.ensure_built(directory)
    result = overhead.measure(paths, directory, rounds=80)
    for name, row in result.items():
        print(f"\n{name}: bare {row['bare_us']:.2f} us, wrapped {row['wrapped_us']:.2f} us, ratio {row['ratio']:.3f}")
    return result


@pytest.mark.parametrize("case", list(overhead.TARGETS))
def test_predict_meets_its_ratio_to_the_bare_interpreter(ratios, case):
    assert ratios[case]["ratio"] <= overhead.TARGETS[case] + SLACK, ratios[case]


def test_float_io_model_spares_the_float_app_the_numpy_quantization(ratios):
    """A model converted with float I/O and int8 inside quantizes in the interpreter: for an app holding
    float data it must cost less over the int8-I/O model's bare call than predict(float) on the int8-I/O model."""
    for prefix, label in (("cnn", "float"), ("tabular", "float dict")):
        inside = ratios[f"{prefix} int8-inside float-I/O predict({label}) vs int8-I/O bare"]["ratio"]
        outside = ratios[f"{prefix} int8 predict({label})"]["ratio"]
        assert inside < outside, (prefix, inside, outside)


def test_import_edge_sdk_is_lighter_than_numpy():
    """`import edge_sdk` in fresh processes against `import numpy`, interleaved, medians of 7 each: the
    package must not pull numpy, the interpreter or TensorFlow in at import time."""

    def seconds(module):
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)

    pairs = [(seconds("edge_sdk"), seconds("numpy")) for _ in range(7)]
    ours, numpy_time = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    print(f"\nimport edge_sdk {ours * 1000:.1f} ms, import numpy {numpy_time * 1000:.1f} ms (medians of 7)")
    assert ours <= 0.5 * numpy_time
