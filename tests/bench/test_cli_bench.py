"""`edge-sdk bench` and `edge-sdk bench compare` from the command line: tables, JSON, PNG, exit codes."""

import json
import subprocess
import sys
import textwrap

import pytest

from edge_sdk.cli import main


def test_bench_table_json_and_exit_code_zero(cnn_models, tmp_path, capsys):
    out = tmp_path / "results.json"
    code = main(
        [
            "bench",
            str(cnn_models["float32"]),
            str(cnn_models["int8"]),
            "--runs",
            "20",
            "--warmup",
            "2",
            "--json",
            str(out),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cnn_float32.tflite" in captured.out and "cnn_int8.tflite" in captured.out
    assert "median us" in captured.out and "1.00x" in captured.out and "not exposed" in captured.out
    doc = json.loads(out.read_text())
    assert doc["format"] == "edge-sdk-bench/1"
    assert doc["options"]["runs"] == 20 and doc["options"]["warmup"] == 2
    assert doc["device"]["cpu_model"] is not None
    assert len(doc["results"]) == 2 and all(len(r["samples_us"]) == 20 for r in doc["results"])


def test_bench_json_to_stdout(cnn_models, capsys):
    code = main(["bench", str(cnn_models["int8"]), "--runs", "5", "--warmup", "0", "--json", "-", "-q", "--no-samples"])
    captured = capsys.readouterr()
    assert code == 0
    doc = json.loads(captured.out)
    assert doc["results"][0]["runs"] == 5 and "samples_us" not in doc["results"][0]


def test_one_failing_model_exits_1_and_is_listed(cnn_models, broken_models, capsys):
    code = main(["bench", str(cnn_models["int8"]), str(broken_models["garbage"]), "--runs", "5", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED garbage.tflite" in captured.out and "TFL3" in captured.out
    assert "cnn_int8.tflite" in captured.out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--runs", "0"], "runs must be an integer >= 1, got 0"),
        (["--threads", "1,-1"], "--threads expects thread counts >= 1; got -1"),
        (["--threads", "two"], "--threads expects comma-separated positive integers"),
        (["--batch", "-3"], "batch must be an integer >= 1, got -3"),
        (["--warmup", "-1"], "warm-up runs must be an integer >= 0"),
    ],
)
def test_impossible_options_exit_2_with_a_clear_error(cnn_models, capsys, argv, message):
    code = main(["bench", str(cnn_models["int8"]), "-q", *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert f"error: {message}" in captured.err


def test_batch_on_fixed_batch_model_exits_2(cnn_models, capsys):
    code = main(["bench", str(cnn_models["int8"]), "--batch", "4", "--runs", "5", "-q"])
    captured = capsys.readouterr()
    assert code == 2
    assert "--batch 4 is impossible; the model fixes its batch dimension" in captured.out


def test_runs_and_duration_are_exclusive(cnn_models, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", str(cnn_models["int8"]), "--runs", "5", "--duration", "1"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_png_of_latency_distributions(cnn_models, tmp_path, capsys):
    png = tmp_path / "latency.png"
    code = main(
        [
            "bench",
            str(cnn_models["float32"]),
            str(cnn_models["int8"]),
            "--runs",
            "10",
            "-q",
            "--png",
            str(png),
            "--no-samples",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "samples_us" not in json.loads((tmp_path / "r.json").read_text())["results"][0]


def test_png_without_matplotlib_names_the_missing_package(cnn_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code = main(["bench", str(cnn_models["int8"]), "--runs", "5", "-q", "--png", str(tmp_path / "x.png")])
    captured = capsys.readouterr()
    assert code == 2
    assert "--png needs matplotlib" in captured.err and "pip install matplotlib" in captured.err
    assert captured.out == ""  # it fails before benchmarking, not after
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def two_results(cnn_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    paths = []
    for name in ("a", "b"):
        path = out / f"{name}.json"
        assert (
            main(
                [
                    "bench",
                    str(cnn_models["float32"]),
                    str(cnn_models["int8"]),
                    "--runs",
                    "10",
                    "-q",
                    "--json",
                    str(path),
                ]
            )
            == 0
        )
        paths.append(path)
    return paths


def test_compare_two_runs(two_results, capsys):
    capsys.readouterr()
    code = main(["bench", "compare", *map(str, two_results)])
    out = capsys.readouterr().out
    assert code == 0
    assert "median us [0]" in out and "x [0] [1]" in out
    assert "cnn_float32.tflite" in out and "cnn_int8.tflite" in out
    assert "lacks" not in out
    assert main(["bench", "compare", *map(str, two_results), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["model"]: r for r in report["rows"]}
    a = json.loads(two_results[0].read_text())["results"]
    b = json.loads(two_results[1].read_text())["results"]
    expected = b[1]["latency_us"]["median"] / a[1]["latency_us"]["median"]
    assert rows["cnn_int8.tflite"]["ratio_vs_first_file"][1] == pytest.approx(expected)


def test_compare_names_fields_an_older_file_lacks(two_results, tmp_path, capsys):
    old = json.loads(two_results[0].read_text())
    del old["format"]
    del old["device"]
    for res in old["results"]:
        del res["rss_added_mb"]
        del res["latency_us"]["p99"]
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old))
    capsys.readouterr()
    code = main(["bench", "compare", str(two_results[1]), str(old_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "old.json lacks fields of edge-sdk-bench/1" in out
    for field in ("format", "device", "results[].rss_added_mb", "results[].latency_us.p99"):
        assert field in out
    assert "format None" in out


def test_compare_with_nothing_in_common_or_no_results(two_results, tmp_path, capsys):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"results": [{"label": "cnn_int8.tflite", "threads": 1, "batch": 128, "mean_ms": 0.6}]}))
    code = main(["bench", "compare", str(two_results[0]), str(bare)])
    err = capsys.readouterr().err
    assert code == 2
    assert "nothing can be compared" in err and "results[].latency_us.median" in err and "format" in err
    nores = tmp_path / "nores.json"
    nores.write_text(json.dumps({"model": "m.tflite", "latency": {"median_ms": 1.0}}))
    assert main(["bench", "compare", str(two_results[0]), str(nores)]) == 2
    assert "has no 'results' list" in capsys.readouterr().err
    assert main(["bench", "compare", str(two_results[0])]) == 2
    assert "at least two results files" in capsys.readouterr().err
    assert main(["bench", "compare", str(two_results[0]), str(tmp_path / "missing.json")]) == 2
    assert "results file not found" in capsys.readouterr().err


def test_bench_runs_with_only_the_light_runtime(cnn_models, tmp_path):
    """In a child process where TensorFlow, Keras and matplotlib cannot be imported, bench still works."""
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {{'tensorflow', 'tf_keras', 'keras', 'matplotlib', 'onnx',
                                           'onnxruntime', 'tensorflow_model_optimization', 'tf2onnx'}}:
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        from edge_sdk.cli import main
        code = main(['bench', {str(cnn_models["int8"])!r}, '--runs', '5', '-q', '--threads', '1,2',
                     '--json', {str(tmp_path / "light.json")!r}])
        heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'matplotlib')]
        print('HEAVY', heavy)
        sys.exit(code)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    doc = json.loads((tmp_path / "light.json").read_text())
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"]
