"""The runtime's CLI commands end to end, in a subprocess like a user runs them."""

import json
import os
import subprocess
import sys

import numpy as np

import edge_sdk


def cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_version_and_help():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"edge-sdk {edge_sdk.__version__}"
    for command in ("inspect", "run"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "usage: edge-sdk " + command in result.stdout


def test_inspect_table_and_json(runtime_models):
    table = cli("inspect", runtime_models["int8"])
    assert table.returncode == 0, table.stderr
    assert "full-integer (integer I/O)" in table.stdout and "CONV_2D" in table.stdout
    data = json.loads(cli("inspect", runtime_models["dynamic_range"], "--json").stdout)
    assert data["kind"] == "dynamic-range"


def test_run_writes_outputs_equal_to_predict(runtime_models, tmp_path):
    out = tmp_path / "y.npz"
    result = cli("run", runtime_models["int8"], "--input", runtime_models["x"], "--output", out, "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert "top-2" in result.stdout
    expected = edge_sdk.load(runtime_models["int8"]).predict(np.load(runtime_models["x"]))
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["probs"], expected)


def test_run_npz_by_name(runtime_models, tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, numeric=np.zeros((2, 3), np.float32), category=np.array([[1], [2]], np.int32))
    result = cli("run", runtime_models["two_inputs"], "--input", inputs, "--json")
    assert result.returncode == 0, result.stderr
    assert np.asarray(json.loads(result.stdout)["score"]).shape == (2, 2)


def test_run_warns_about_non_finite_float_inputs(runtime_models, tmp_path):
    x = np.load(runtime_models["x"])[:3].copy()
    x[1, 0, 0, 0] = np.nan
    x[2, 4, 4, 0] = np.inf
    inputs = tmp_path / "nan.npy"
    np.save(inputs, x)
    result = cli("run", runtime_models["float32"], "--input", inputs, "--json")
    assert result.returncode == 0, result.stderr
    assert "input 'image' holds 2 NaN/inf value(s) of 192" in result.stderr
    clean = cli("run", runtime_models["float32"], "--input", runtime_models["x"], "--json")
    assert "NaN/inf" not in clean.stderr


def test_run_bad_input_is_a_clear_error(runtime_models, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    result = cli("run", runtime_models["int8"], "--input", bad)
    assert result.returncode == 2
    assert "error: input 'image' expects rank 4" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli("run", tmp_path / "missing.tflite", "--input", bad)
    assert result.returncode == 2 and "model file not found" in result.stderr


def test_inspect_not_a_model(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_text("hello")
    result = cli("inspect", path)
    assert result.returncode == 2 and "not a TFLite flatbuffer" in result.stderr


def test_json_convention_of_bench_and_parity(tmp_path, capsys):
    """--json - prints JSON only; --json FILE writes it atomically and keeps the table; no --json: table only."""
    from edge_sdk.console import emit_report

    doc = {"median_us": 12.5}
    emit_report(doc, "-", lambda: print("TABLE"))
    out = capsys.readouterr().out
    assert json.loads(out) == doc and "TABLE" not in out
    target = tmp_path / "r.json"
    emit_report(doc, str(target), lambda: print("TABLE"))
    captured = capsys.readouterr()
    assert captured.out == "TABLE\n" and f"wrote {target}" in captured.err
    assert json.loads(target.read_text()) == doc
    emit_report(doc, None, lambda: print("TABLE"))
    assert capsys.readouterr().out == "TABLE\n"


def test_inspect_and_verify_refuse_devices_and_pipes_at_once(tmp_path):
    """Before: /dev/zero was read without end and a named pipe blocked forever (or 'not found' for verify)."""
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    for command in ("inspect", "verify"):
        for path, kind in (("/dev/zero", "character device"), (fifo, "named pipe")):
            result = cli(command, path, timeout=60)
            assert result.returncode == 2, result.stderr
            assert f"is a {kind}, not a regular file; expected a .tflite file" in result.stderr
            assert "Traceback" not in result.stderr


def test_bench_and_parity_share_the_json_option(runtime_models, tmp_path):
    """Bare --json prints JSON; --json FILE must end in .json, so it cannot take the model path after it."""
    result = cli("bench", runtime_models["int8"], "--runs", "3", "--warmup", "0", "-q", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["status"] == "ok"
    for command in ("bench", "parity"):
        result = cli(command, "--json", runtime_models["int8"], runtime_models["float32"])
        assert result.returncode == 2 and "expected a file name ending in .json" in result.stderr
        assert "--json=FILE.json" in result.stderr
