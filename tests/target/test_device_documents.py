"""A device's answer is data, not truth (issue 26, section 1): ``bench --target`` and ``bench compare``
against crafted documents from a fake device (a stand-in ``ssh`` first on PATH; no sshd needed)."""

import copy
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fake_device import FakeDevice, remote_path, valid_document

import edge_sdk
from edge_sdk.cli import main

REPO = Path(__file__).resolve().parents[2]
SMALL_MODEL = REPO / "tests/data/public_models/mlperf_tiny_kws_dscnn_int8_reference.tflite"
REMOTE_COMMAND = (
    f"env PYTHONPATH={shlex.quote(str(Path(edge_sdk.__file__).parents[1]))} {shlex.quote(sys.executable)} -m edge_sdk"
)


@pytest.fixture
def device(tmp_path, monkeypatch):
    fake = FakeDevice(tmp_path / "device")
    monkeypatch.setenv("PATH", fake.env["PATH"])
    monkeypatch.setenv("EDGE_SDK_FAKE_DEVICE", fake.env["EDGE_SDK_FAKE_DEVICE"])
    return fake


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "models" / "int8.tflite"
    path.parent.mkdir()
    path.write_bytes(b"only copied to the fake device, never loaded here")
    return path


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _set(doc, dotted, value):
    *parents, last = dotted.split(".")
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


# (id, field to set, value, exit status of the device, what the one-line refusal must say)
CRAFTED = [
    (
        "median-NaN",
        "results.0.latency_us.median",
        float("nan"),
        0,
        "results[0].latency_us.median: expected a finite number > 0, got NaN",
    ),
    (
        "median-negative",
        "results.0.latency_us.median",
        -5,
        0,
        "results[0].latency_us.median: expected a finite number > 0, got -5",
    ),
    (
        "median-string",
        "results.0.latency_us.median",
        "fast",
        0,
        "results[0].latency_us.median: expected a finite number > 0, got 'fast'",
    ),
    (
        "median-400-digits",
        "results.0.latency_us.median",
        10**400,
        0,
        "results[0].latency_us.median: expected a finite number > 0 (at most 1e+15), got a number with more than 20 digits",
    ),
    (
        "p90-infinity",
        "results.0.latency_us.p90",
        float("-inf"),
        0,
        "results[0].latency_us.p90: expected a finite number > 0, got -Infinity",
    ),
    ("results-empty", "results", [], 0, "results: expected at least one result, got a list"),
    ("exit-3-valid-document", None, None, 3, "the device's edge-sdk bench exited 3, but its results say 0 of 1 failed"),
    (
        "exit-0-but-failed",
        "results.0.status",
        "failed",
        0,
        "exited 0, but its results say 1 of 1 failed (expected exit 2)",
    ),
    (
        "unknown-status",
        "results.0.status",
        "great",
        0,
        "results[0].status: expected one of 'ok', 'failed', got 'great'",
    ),
    ("cores-number", "device.cores", 2, 0, "device.cores: expected an object, got 2"),
    ("device-string", "device", "x", 0, "device: expected an object, got 'x'"),
    (
        "results-numbers",
        "results",
        [1, 2, 3],
        0,
        "results[0]: expected an object with label, threads, status and latency_us, got 1",
    ),
    ("latency-list", "results.0.latency_us", [1, 2], 0, "results[0].latency_us: expected an object, got a list"),
    ("threads-zero", "results.0.threads", 0, 0, "results[0].threads: expected an integer >= 1, got 0"),
    (
        "label-list",
        "results.0.label",
        ["a"],
        0,
        "results[0].label: expected a string of at most 1024 characters, got a list",
    ),
    ("deep-nesting", "results.0.inputs", _nested(60), 0, "levels deep; expected at most 32"),
    ("very-deep-nesting", None, "[" * 100_000 + "]" * 100_000, 0, "levels deep; expected at most 32"),
    ("path-escape", "results.0.path", "../../../etc/passwd", 0, "results[0].path: expected one of the models sent"),
    ("not-json", None, "Segmentation fault\n", 0, "without a valid results document"),
]


@pytest.mark.parametrize("case", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_device_document_is_refused_naming_the_field(case, device, model, tmp_path, capsys):
    name, field, value, status, message = case
    doc = valid_document(model)
    if field is not None:
        _set(doc, field, copy.deepcopy(value))
    if name in ("very-deep-nesting", "not-json"):
        device.answer(None, status=status, raw=value)
    else:
        device.answer(doc, status=status)
    out = tmp_path / "device.json"
    code = main(["bench", str(model), "--runs", "20", "--target", "ssh://pi", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert "unexpected" not in captured.err and "bug" not in captured.err
    assert not out.exists() and captured.out == ""  # nothing written, no table of nan or -5


def test_a_valid_answer_is_accepted_and_written_as_strict_json(device, model, tmp_path, capsys):
    doc = valid_document(model)
    doc["results"][0]["ratio_vs_first"] = 7.0  # recomputed on the host, not taken from the device
    doc["recommendations"] = [{"text": ["\x1b[31mbuy a new device"]}]
    device.answer(doc)
    out = tmp_path / "device.json"
    assert main(["bench", str(model), "--runs", "20", "--target", "ssh://pi", "--json", str(out)]) == 0
    capsys.readouterr()
    written = _strict_json(out.read_text())
    assert written["results"][0]["path"] == str(model)  # mapped back to the local file
    assert written["results"][0]["remote_path"] == remote_path(model)
    assert written["results"][0]["ratio_vs_first"] == 1.0
    assert all("buy" not in line for rec in written["recommendations"] for line in rec["text"])
    assert written["target"] == {
        "url": "ssh://pi",
        "transport": "ssh",
        "remote_command": "edge-sdk",
        "remote_exit_code": 0,
    }


def test_escape_sequences_from_the_device_never_reach_the_terminal(device, model, capsys):
    doc = valid_document(model)
    failed = copy.deepcopy(doc["results"][0])
    failed.update(
        status="failed",
        threads=2,
        error="load: \x1b]0;owned\x07bad\rfile\x1b[2J\x9b31m",
        runs=None,
        latency_us=None,
        throughput=None,
        samples_us=None,
    )
    doc["results"].append(failed)
    doc["results"][0]["label"] = "\x1b[2J\x1b]0;title\x07int8\r.tflite\x08"
    doc["device"]["cpu_model"] = "\x1b]2;pwned\x1b\\Cortex\x1b[5m"
    device.answer(doc, status=1)
    code = main(["bench", str(model), "--runs", "20", "--target", "ssh://pi"])
    captured = capsys.readouterr()
    assert code == 1
    text = captured.out + captured.err
    assert not any(ch in text for ch in "\x1b\r\x07\x08\x9b"), repr(text)
    assert "int8?.tflite" in captured.out and "FAILED int8.tflite (threads 2): load: bad?file" in captured.out
    assert "device: Cortex (aarch64)" in captured.out


def test_a_device_error_line_is_printed_without_its_escape_sequences(device, model, capsys):
    device.answer(None, status=2, raw="", stderr="error: \x1b[2J\x1b]0;title\x07model\rbroken\n")
    assert main(["bench", str(model), "--runs", "20", "--target", "ssh://pi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: edge-sdk bench on ssh://pi exited 2 without a results document: error: model?broken")
    assert "\x1b" not in err and "\r" not in err and "\x07" not in err


def test_a_huge_answer_is_refused_without_buffering_it(device, model):
    """300 MB from the device: refused once past the 32 MiB cap, the host's peak RSS far below the answer."""
    device.huge(300 * 1024 * 1024)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report pytest's peak
    probe = (
        "import sys\nfrom edge_sdk.cli import main\ncode = main(sys.argv[1:])\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print('peak_rss_kb', peak, file=sys.stderr)\nsys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "bench", str(model), "--runs", "20", "--target", "ssh://pi"],
        capture_output=True,
        text=True,
        timeout=120,
        env=device.env,
    )
    assert done.returncode == 2, done.stderr
    first, rss = done.stderr.splitlines()[0], done.stderr.splitlines()[-1]
    assert first.startswith("error: the answer from ssh://pi exceeds 33,554,432 bytes"), done.stderr
    assert int(rss.split()[1]) < 200 * 1024, rss  # KiB: well below the 300 MB the device sent


def test_a_malformed_remote_command_is_refused_in_one_line(model, capsys):
    assert main(["bench", str(model), "--target", "ssh://pi", "--remote-command", '"unterminated']) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --remote-command: expected a command line")
    assert "No closing quotation" in err


def test_a_model_path_with_dot_dot_benches_remotely_as_locally(device, tmp_path, monkeypatch, capsys):
    """The device is this machine (the stand-in ssh runs the remote script here), the model a real one."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "kws.tflite").write_bytes(SMALL_MODEL.read_bytes())
    monkeypatch.chdir(work)
    device.run_here()
    out = tmp_path / "remote.json"
    code = main(
        [
            "bench",
            "../kws.tflite",
            "--runs",
            "5",
            "--warmup",
            "1",
            "--target",
            "ssh://here",
            "--remote-command",
            REMOTE_COMMAND,
            "--json",
            str(out),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = _strict_json(out.read_text())
    assert doc["results"][0]["status"] == "ok" and doc["results"][0]["path"] == "../kws.tflite"
    assert doc["results"][0]["remote_path"] == f"m0/{tmp_path.name}/kws.tflite"
    assert "kws.tflite" in captured.out


# -- bench compare on malformed results files ----------------------------------------------------------

COMPARE = [
    ("device-string", "device", "x", "device: expected an object, got 'x'"),
    ("cores-number", "device.cores", 2, "device.cores: expected an object, got 2"),
    ("results-numbers", "results", [1, 2, 3], "results[0]: expected an object"),
    ("latency-list", "results.0.latency_us", [1, 2], "results[0].latency_us: expected an object, got a list"),
    ("label-list", "results.0.label", ["a"], "results[0].label: expected a string"),
    (
        "median-NaN",
        "results.0.latency_us.median",
        float("nan"),
        "results[0].latency_us.median: expected a finite number > 0, got NaN",
    ),
    ("deep-nesting", "results.0.inputs", [], "levels deep; expected at most 32"),
]


@pytest.mark.parametrize("case", COMPARE, ids=[c[0] for c in COMPARE])
def test_bench_compare_refuses_a_malformed_results_file_naming_the_field(case, model, tmp_path, capsys):
    name, field, value, message = case
    good, bad = valid_document(model), valid_document(model)
    _set(bad, field, copy.deepcopy(value))
    (tmp_path / "good.json").write_text(json.dumps(good))
    if name == "deep-nesting":
        (tmp_path / "bad.json").write_text(
            json.dumps(bad).replace('"inputs": []', '"inputs": ' + "[" * 5000 + "]" * 5000)
        )
    else:
        (tmp_path / "bad.json").write_text(json.dumps(bad))
    code = main(["bench", "compare", str(tmp_path / "good.json"), str(tmp_path / "bad.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path / 'bad.json'}: ") and message in err, err
    assert "unexpected" not in err


def test_bench_compare_still_reads_an_older_file_that_lacks_fields(model, tmp_path, capsys):
    good, old = valid_document(model), valid_document(model)
    del old["device"], old["results"][0]["throughput"], old["format"]
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["bench", "compare", str(tmp_path / "good.json"), str(tmp_path / "old.json"), "--json", "-"]) == 0
    report = _strict_json(capsys.readouterr().out)
    assert report["rows"][0]["median_us"] == [118.0, 118.0]


# -- auto --target: the candidates' latencies come from the same checked document ------------------------


@pytest.mark.parametrize("median,shown", [(-1000, "-1000"), (float("nan"), "NaN"), ("fast", "'fast'")])
def test_auto_target_never_records_a_latency_the_device_made_up(median, shown, device, model):
    from converters.auto_measure import measure_latency
    from converters.recipe import AutoOptions
    from edge_sdk.remote import RemoteError

    doc = valid_document(model)
    doc["results"][0]["latency_us"]["median"] = median
    device.answer(doc)
    with pytest.raises(
        RemoteError,
        match=r"results\[0\]\.latency_us\.median: expected a finite number > 0, "
        rf"got {shown}",
    ):
        measure_latency([model], None, AutoOptions(target="ssh://pi", bench_seconds=0.1), progress=False)


def test_auto_target_refuses_a_malformed_remote_command_in_one_line():
    from converters.auto import probe_target
    from converters.recipe import AutoOptions
    from edge_sdk.remote import RemoteError

    with pytest.raises(RemoteError, match="--remote-command: expected a command line .*No closing quotation"):
        probe_target(AutoOptions(target="ssh://pi", remote_command='"unterminated'))


# -- the helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("a\x1b[2Jb", "ab"),  # CSI: clear screen
        ("x\x1b]0;title\x07y", "xy"),  # OSC window title, BEL-terminated
        ("x\x1b]8;;http://e\x1b\\y", "xy"),  # OSC hyperlink, ST-terminated
        ("c\x9b31md", "cd"),  # 8-bit CSI (C1)
        ("r\rz", "r?z"),
        ("b\x08s", "b?s"),
        ("bell\x07", "bell?"),
        ("del\x7f", "del?"),
        ("c1\x85", "c1?"),
        ("tab\tx", "tab x"),
        ("two\nlines", "two?lines"),
        ("plain text é", "plain text é"),
    ],
)
def test_clean_text_removes_escape_sequences_and_control_characters(raw, clean):
    from edge_sdk.console import clean_text

    assert clean_text(raw) == clean
    assert clean_text("a\nb\x1b[1m", newlines=True) == "a\nb"
    assert clean_text("x" * 50, limit=10) == "xxxxxxx..."


def test_print_json_writes_strict_json(capsys):
    import numpy as np

    from edge_sdk.console import print_json

    print_json({"ok": 1.5, "nan": float("nan"), "inf": [np.float32("inf")], "arr": np.array([1.0, np.nan])})
    assert _strict_json(capsys.readouterr().out) == {"ok": 1.5, "nan": None, "inf": [None], "arr": [1.0, None]}


def test_bench_compare_refuses_a_results_file_with_a_duplicate_key(model, tmp_path, capsys):
    # {"median": 1, ..., "median": 118}: Python keeps the last value, other readers the first; one strict
    # reader (edge_sdk.jsonio) refuses it for results documents as for manifests.
    good = valid_document(model)
    (tmp_path / "good.json").write_text(json.dumps(good))
    text = json.dumps(good).replace('"latency_us": {', '"latency_us": {"median": 1.0, ', 1)
    (tmp_path / "bad.json").write_text(text)
    code = main(["bench", "compare", str(tmp_path / "good.json"), str(tmp_path / "bad.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "has the key 'median' more than once" in err and str(tmp_path / "bad.json") in err, err
