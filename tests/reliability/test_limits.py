"""Limits (issue 26 section 2): thread counts bounded for the machine, max_tensor_bytes applied when predict
resizes the batch, and a legal 255-byte output name that works (its temporaries fit NAME_MAX)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import EdgeSdkError, ModelTooLargeError
from edge_sdk.limits import max_threads


def test_the_thread_bound_is_max_64_or_8_per_core():
    assert max_threads() == max(64, 8 * (os.cpu_count() or 1))


@pytest.mark.parametrize("count", [100_000, 20_000, "bound+1"])
def test_load_refuses_more_threads_than_the_machine_allows(digits_models, count):
    count = max_threads() + 1 if count == "bound+1" else count
    with pytest.raises(EdgeSdkError, match=rf"num_threads is {count:,}; this machine allows at most {max_threads()}"):
        edge_sdk.load(digits_models["float32"], num_threads=count)
    assert edge_sdk.load(digits_models["float32"], num_threads=max_threads()).num_threads == max_threads()


@pytest.mark.parametrize("command", ["bench", "run"])
def test_cli_threads_beyond_the_bound_is_one_line_exit_2(digits_models, command, capsys, tmp_path):
    extra = ["--input", str(digits_models["x"])] if command == "run" else ["--runs", "1"]
    code = main([command, str(digits_models["float32"]), "--threads", "100000", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    assert err.startswith("error: --threads is 100,000; this machine allows at most"), err


def test_bench_options_refuse_a_thread_count_beyond_the_bound():
    from edge_sdk.bench import BenchOptionError, BenchOptions, parse_threads

    with pytest.raises(BenchOptionError, match="at most"):
        BenchOptions(threads=(1, 100_000)).validate()
    with pytest.raises(BenchOptionError, match="--threads is 100,000"):
        parse_threads("1,100000")
    assert parse_threads(f"1,{max_threads()}") == (1, max_threads())


def test_a_huge_batch_is_refused_before_allocation_naming_the_size(digits_models):
    model = edge_sdk.load(digits_models["float32"])
    huge = np.zeros((2_000_000, 8, 8, 1), np.float32)  # 512 MB of untouched zero pages
    started = time.perf_counter()
    with pytest.raises(
        ModelTooLargeError,
        match=r"\[2000000, 8, 8, 1\].*about [\d,]+ bytes; the limit "
        r"\(max_tensor_bytes\) is 1,073,741,824 bytes",
    ):
        model.predict(huge)
    refused = time.perf_counter() - started
    started = time.perf_counter()
    small = model.predict(huge[:3])  # the model still works, at its old size
    assert small.shape == (3, 10)
    assert refused < 50 * max(time.perf_counter() - started, 1e-3)  # refused at once, not after a run


def test_max_tensor_bytes_applies_to_inputs_and_to_intermediate_tensors_on_resize(digits_models):
    limit = 64_000
    model = edge_sdk.load(digits_models["float32"], max_tensor_bytes=limit)
    x = np.zeros((400, 8, 8, 1), np.float32)  # 102,400 bytes of input
    with pytest.raises(ModelTooLargeError, match=r"input 'image'.* is 102,400 bytes; the limit"):
        model.predict(x)
    per_row = max(np.prod([d if d > 0 else 1 for d in shape]) * size for _, shape, size in model._dynamic_tensors(0))
    assert per_row > 256  # an intermediate tensor is larger than the 256-byte input row
    rows = limit // 256  # the input fits; the intermediate does not
    with pytest.raises(ModelTooLargeError, match="would make tensor .* about"):
        model.predict(x[:rows])
    fits = limit // int(per_row)
    assert model.predict(x[:fits]).shape == (fits, 10)


def test_after_allocation_the_real_sizes_are_checked_too(digits_models, monkeypatch):
    model = edge_sdk.load(digits_models["float32"], max_tensor_bytes=64_000)
    monkeypatch.setattr(model, "_check_resize_fits", lambda sig, arrays: None)  # as if the estimate missed
    with pytest.raises(ModelTooLargeError, match=r"has shape \[2000, 8, 8, 1\] \(512,000 bytes\) for this batch"):
        model.predict(np.zeros((2000, 8, 8, 1), np.float32))
    assert model.predict(np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 10)


def test_a_255_byte_output_name_works_for_every_atomic_writer(tmp_path):
    from edge_sdk.fileio import atomic_output_dir, atomic_output_path, atomic_write_text, staging_prefix

    name = "d" * 255
    for round_ in range(2):  # the second replaces the first (the .old- or exchange path)
        with atomic_output_dir(tmp_path / name) as staging:
            assert len(staging.name.encode()) <= 255 and staging.name.startswith(staging_prefix(tmp_path / name))
            (staging / "model.tflite").write_text(str(round_))
    assert (tmp_path / name / "model.tflite").read_text() == "1"
    atomic_write_text(tmp_path / ("f" * 255), "x")
    with atomic_output_path(tmp_path / ("n" * 251 + ".npz")) as tmp:
        assert tmp.name.endswith(".npz") and len(tmp.name) <= 255
        tmp.write_text("z")
    multibyte = "é" * 127  # 254 bytes
    with atomic_output_dir(tmp_path / multibyte) as staging:
        assert len(os.fsencode(staging.name)) <= 255
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "f" * 255, "n" * 251 + ".npz", multibyte])
    # two long names that share their start get distinct staging prefixes
    assert staging_prefix(tmp_path / ("d" * 254 + "x")) != staging_prefix(tmp_path / ("d" * 254 + "y"))
    assert staging_prefix(tmp_path / "out") == ".out.tmp-"


def test_run_output_with_a_255_byte_name(digits_models, tmp_path, capsys):
    out = tmp_path / ("r" * 251 + ".npz")
    assert (
        main(["run", str(digits_models["float32"]), "--input", str(digits_models["x"]), "--output", str(out)]) == 0
    ), capsys.readouterr().err
    assert np.load(out).files and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_convert_into_a_255_byte_out_name(digits_models, tmp_path, capsys):
    out = tmp_path / ("o" * 255)
    code = main(["convert", str(digits_models["float32"]), "--recipe", "dynamic", "--out", str(out)])
    assert code == 0, capsys.readouterr().err[-2000:]
    assert (out / "summary.json").is_file() and [p.name for p in tmp_path.iterdir()] == [out.name]
