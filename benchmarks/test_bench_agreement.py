"""Our median agrees within 15% with the benchmark tool that ships inside ai-edge-litert.

Both run in this process, alternating rounds on the same model and thread
count, so load from other processes on the machine hits both alike. Load only
ever adds time, so the two are compared on their fastest round's median: one
busy round (seen in CI: the tool at 1.46 ms twice, 1.17 ms once) cannot decide it. The tool
(ai_edge_litert/tools/benchmark_litert_model.py) drives LiteRT's CompiledModel
API on prefilled buffers; we drive the Interpreter through edge_sdk.Model.

A benchmark, not a unit test: it compares two timers, and a machine busy enough
to starve one round of each still decides it. Run:
.venv/bin/pytest benchmarks/test_bench_agreement.py -s -q
"""

import argparse
import statistics
import sys
from pathlib import Path

import pytest

from edge_sdk.bench import BenchOptions, run_benchmark

ROUNDS = 5
RUNS = 100
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def cnn_models(tmp_path_factory):
    """The bench tests' CNNs (float32 and int8, batch fixed at 128), built once."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bench"))
    from bench_models import build_cnn_models

    return build_cnn_models(tmp_path_factory.mktemp("agreement_models"))


def litert_tool_median_us(model_path, threads, runs):
    from ai_edge_litert.tools import benchmark_litert_model as tool

    args = argparse.Namespace(
        model=str(model_path),
        signature="",
        use_cpu=True,
        no_cpu=False,
        use_gpu=False,
        use_npu=False,
        require_full_delegation=False,
        dispatch_library_path="",
        compiler_plugin_path="",
        runtime_path="",
        num_runs=runs,
        warmup_runs=10,
        num_threads=threads,
        result_json="",
        verbose=False,
    )
    results = tool.run_benchmark(args)
    assert results["num_threads"] == threads and results["latency"]["num_runs"] == runs
    return results["latency"]["median_ms"] * 1000.0


def edge_sdk_median_us(model_path, threads, runs):
    doc = run_benchmark([model_path], BenchOptions(runs=runs, warmup=10, threads=(threads,), progress=False))
    res = doc["results"][0]
    assert res["status"] == "ok", res.get("error")
    return res["latency_us"]["median"]


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_median_agrees_with_litert_benchmark_tool(cnn_models, kind, capsys):
    path = cnn_models[kind]
    ours, theirs = [], []
    for _ in range(ROUNDS):
        theirs.append(litert_tool_median_us(path, 1, RUNS))
        ours.append(edge_sdk_median_us(path, 1, RUNS))
    ratio = min(ours) / min(theirs)
    with capsys.disabled():
        print(
            f"\n{kind}: fastest round's median: edge-sdk bench {min(ours):.1f} us, benchmark_litert_model.py "
            f"{min(theirs):.1f} us, ratio {ratio:.3f} (medians over rounds {statistics.median(ours):.1f} / "
            f"{statistics.median(theirs):.1f} us)"
        )
    # The tool reports milliseconds to two decimals (rounded to 10 us): on a fast machine that rounding alone
    # moves the ratio by up to 5 us / its median, so it widens the tolerance instead of failing the machine.
    resolution = 5.0 / min(theirs)
    assert abs(ratio - 1.0) <= TOLERANCE + resolution, (ours, theirs)
