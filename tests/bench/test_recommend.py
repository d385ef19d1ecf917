"""bench recommends threads and batch per model, says when more threads are slower, and compares accelerators."""

import numpy as np
import pytest

from edge_sdk import bench, bench_results
from edge_sdk.bench import BenchOptionError, BenchOptions, recommend, run_benchmark
from edge_sdk.cli import main


def result(label, threads, batch, median):
    return {"label": label, "threads": threads, "batch": batch, "status": "ok", "latency_us": {"median": median}}


def test_recommendation_picks_latency_and_throughput_and_flags_slower_threads():
    results = [
        result("wide.tflite", 1, 1, 12.0),
        result("wide.tflite", 1, 32, 40.0),
        result("wide.tflite", 2, 1, 13.5),
        result("wide.tflite", 2, 32, 30.0),
        result("cnn.tflite", 1, 1, 30.0),
        result("cnn.tflite", 2, 1, 20.0),
        {"label": "broken.tflite", "threads": 1, "batch": 1, "status": "failed"},
    ]
    recs = {r["model"]: r for r in recommend(results)}
    assert set(recs) == {"wide.tflite", "cnn.tflite"}
    wide = recs["wide.tflite"]
    assert wide["lowest_latency"] == {"threads": 1, "batch": 1, "median_us": 12.0}
    assert wide["highest_throughput"]["threads"] == 2 and wide["highest_throughput"]["batch"] == 32
    assert wide["highest_throughput"]["items_per_s"] == pytest.approx(32e6 / 30.0)
    assert wide["more_threads_slower"] == [
        {"batch": 1, "threads": [1, 2], "median_us": [12.0, 13.5], "ratio": pytest.approx(1.125)}
    ]
    assert any(
        "SLOWER with more threads at batch 1: 2 threads 13.5 us against 1 thread 12.0 us (1.12x)" in t
        for t in wide["text"]
    )
    cnn = recs["cnn.tflite"]
    assert cnn["more_threads_slower"] == [] and cnn["lowest_latency"]["threads"] == 2
    assert not any("SLOWER" in t for t in cnn["text"])


def test_within_the_margin_is_not_called_slower():
    recs = recommend([result("m", 1, 1, 10.0), result("m", 2, 1, 10.4)])
    assert recs[0]["more_threads_slower"] == []


def test_sweep_of_batches_and_accelerators_side_by_side(cnn_models):
    options = BenchOptions(runs=10, warmup=1, progress=False, threads=(1,), batches=(1, 4), accelerators=(None, "cpu"))
    doc = run_benchmark([cnn_models["dynamic"]], options)
    rows = [(r["label"], r["batch"], r["accelerator"]) for r in doc["results"]]
    assert rows == [
        ("cnn_dynamic_batch.tflite [interpreter]", 1, "interpreter"),
        ("cnn_dynamic_batch.tflite [interpreter]", 4, "interpreter"),
        ("cnn_dynamic_batch.tflite [cpu]", 1, "cpu"),
        ("cnn_dynamic_batch.tflite [cpu]", 4, "cpu"),
    ]
    assert all(r["status"] == "ok" for r in doc["results"]), [r.get("error") for r in doc["results"]]
    assert doc["results"][1]["ratio_vs_first"] == 1.0  # ratios compare the same batch
    recs = {r["model"]: r for r in doc["recommendations"]}
    assert set(recs) == {"cnn_dynamic_batch.tflite [interpreter]", "cnn_dynamic_batch.tflite [cpu]"}
    assert "recommend: cnn_dynamic_batch.tflite [cpu]: lowest latency per call" in bench_results.format_results(doc)


def test_bench_cli_options_for_batches_and_accelerators(cnn_models, capsys):
    code = main(
        [
            "bench",
            str(cnn_models["dynamic"]),
            "--batch",
            "1,2",
            "--accelerator",
            "interpreter,cpu",
            "--runs",
            "5",
            "--warmup",
            "1",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("recommend: ") >= 2 and "[cpu]" in out
    for argv, message in (
        (["--accelerator", "tpu"], "unknown accelerator 'tpu'"),
        (["--batch", "1,0"], "batch must be an integer >= 1, got 0"),
        (["--batch", "one"], "--batch expects comma-separated positive integers"),
    ):
        assert main(["bench", str(cnn_models["dynamic"]), "--runs", "5", "-q", *argv]) == 2
        assert message in capsys.readouterr().err


def test_options_refuse_an_unknown_accelerator():
    with pytest.raises(BenchOptionError, match="unknown accelerator 'fpga'"):
        BenchOptions(accelerators=("fpga",)).validate()
    assert bench.parse_accelerators("interpreter, CPU") == (None, "cpu")
    assert bench.parse_batches("8,1,8") == (8, 1)
    assert np.isclose(bench.SLOWER_MARGIN, 1.05)
