"""Bad inputs, as a matrix: to predict (one error class per mistake) and to the CLI (one clear line, never a
traceback); each message names what was expected and what came."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import (
    EdgeSdkError,
    InputCountError,
    InputDtypeError,
    InputNameError,
    InputShapeError,
    NonFiniteInputError,
)


def _image(n=2, dtype=np.float32):
    return np.random.default_rng(0).random((n, 8, 8, 1)).astype(dtype)


# (case id, input builder, error class, substrings the message must contain)
MATRIX = [
    ("shape", lambda: _image()[:, :7], InputShapeError, ["expects shape [?, 8, 8, 1]", "(2, 7, 8, 1)", "dimension 1"]),
    ("channels", lambda: np.zeros((1, 8, 8, 3), np.float32), InputShapeError, ["[?, 8, 8, 1]", "(1, 8, 8, 3)"]),
    ("rank-missing-batch", lambda: _image()[0], InputShapeError, ["rank 4", "rank 3", "x[None]"]),
    ("rank-too-high", lambda: _image()[None], InputShapeError, ["rank 4", "rank 5"]),
    ("dtype-complex", lambda: _image().astype(np.complex64), InputDtypeError, ["complex64"]),
    ("dtype-string", lambda: np.full((1, 8, 8, 1), "a"), InputDtypeError, ["<U1"]),
    ("dtype-object", lambda: np.empty((1, 8, 8, 1), dtype=object), InputDtypeError, ["image"]),
    ("ragged", lambda: [[1.0, 2.0], [3.0]], InputDtypeError, ["image"]),
    ("name", lambda: {"img": _image()}, InputNameError, ["unknown input name 'img'", "expected one of: image"]),
    ("name-missing", lambda: {}, InputCountError, ["expected 1 input(s)", "missing: image"]),
    ("count", lambda: [_image(), _image()], InputCountError, ["expected 1 input(s)", "sequence of 2"]),
    ("empty-batch", lambda: np.zeros((0, 8, 8, 1), np.float32), InputShapeError, ["empty batch", "(0, 8, 8, 1)"]),
]


@pytest.mark.parametrize("model_name", ["float32", "int8"])
@pytest.mark.parametrize("case,build,error,fragments", MATRIX, ids=[m[0] for m in MATRIX])
def test_bad_input_matrix(model_name, case, build, error, fragments, digits_models):
    model = edge_sdk.load(digits_models[model_name])
    with pytest.raises(error) as info:
        model.predict(build())
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    assert isinstance(info.value, EdgeSdkError)
    # The model still works after refusing bad input.
    assert model.predict(_image(1)).shape == (1, 10)


def test_the_error_classes_are_distinct():
    classes = {InputShapeError, InputDtypeError, InputNameError, InputCountError, NonFiniteInputError}
    assert len(classes) == 5
    for a in classes:
        for b in classes - {a}:
            assert not issubclass(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_for_a_quantized_input_are_refused(bad, digits_models):
    model = edge_sdk.load(digits_models["int8"])
    x = _image(3)
    x[1, 4, 4, 0] = bad
    with pytest.raises(NonFiniteInputError, match=r"quantized \(int8\).*1 NaN/inf"):
        model.predict(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_for_a_float_input_are_never_hidden(bad, digits_models):
    """A float model has no integer mapping to refuse, so the runtime passes NaN/inf through; the
    affected row's outputs must then be visibly non-finite and other rows untouched, never a
    plausible-looking wrong answer."""
    model = edge_sdk.load(digits_models["float32"])
    x = _image(3)
    clean = model.predict(x)
    x[1, 4, 4, 0] = bad
    out = model.predict(x)
    assert not np.isfinite(out[1]).any()
    np.testing.assert_array_equal(out[[0, 2]], clean[[0, 2]])


def test_integer_data_for_an_int8_input_is_taken_as_stored(digits_models):
    model = edge_sdk.load(digits_models["int8"])
    x = _image(2)
    scale, zero = model.inputs[0].quantization.scale, model.inputs[0].quantization.zero_point
    stored = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(model.predict(stored), model.predict(x))
    with pytest.raises(InputDtypeError, match="quantized int8; expected float data .* got complex64"):
        model.predict(stored.astype(np.complex64))


def test_unknown_signature(digits_models):
    model = edge_sdk.load(digits_models["float32"])
    with pytest.raises(InputNameError, match="unknown signature 'nope'.*serving_default"):
        model.predict(_image(), signature="nope")


# -- the CLI: clear errors, never tracebacks (issue #12 section 5) ---------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _cli(*args, env_extra=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.update(env_extra or {})
    streams = {"stdout": subprocess.PIPE} if "stdout" not in kwargs else {}
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", *map(str, args)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=300,
        **streams,
        **kwargs,
    )


def _one_error_line(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err and "unexpected" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def _array_files(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=np.zeros(3), extra=np.array([None, 1], dtype=object))
    (tmp_path / "pickle.npy").write_bytes(b"\x80\x04\x95" + b"\x00" * 20)
    np.save(tmp_path / "good.npy", np.zeros((2, 8, 8, 1), np.float32))
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:150])
    (tmp_path / "folder.npy").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "name,fragments",
    [
        ("missing.npy", ["not found: ", "missing.npy", "expected a .npy or .npz"]),
        ("folder.npy", ["folder.npy is a directory", "expected a .npy or .npz"]),
        ("objects.npy", ["holds Python objects (dtype object)", "does not unpickle"]),
        ("objects.npz", ["entry 'extra.npy' holds Python objects"]),
        ("pickle.npy", ["is a Python pickle, not a .npy/.npz file", "never loads pickles"]),
        ("truncated.npy", ["truncated.npy is not a readable .npy/.npz file", "expected a .npy or .npz"]),
        ("model", ["is a TFLite model, not a .npy/.npz file"]),
        ("/dev/zero", ["/dev/zero is a character device, not a regular file"]),
    ],
)
def test_run_input_files_of_the_wrong_kind_say_what_came(name, fragments, tmp_path, digits_models, capsys):
    files = _array_files(tmp_path)
    path = digits_models["int8"] if name == "model" else (name if name.startswith("/") else files / name)
    _one_error_line(
        main(["run", str(digits_models["int8"]), "--input", str(path)]), capsys.readouterr().err, "--input", *fragments
    )


@pytest.mark.parametrize("model", ["/dev/zero", "folder"])
def test_run_a_model_that_is_not_a_regular_file_is_refused_at_once(model, tmp_path, digits_models, capsys):
    (tmp_path / "folder").mkdir()
    path = model if model.startswith("/") else tmp_path / model
    started = time.monotonic()
    _one_error_line(
        main(["run", str(path), "--input", str(digits_models["x"])]), capsys.readouterr().err, f"model {path} is a "
    )
    assert time.monotonic() - started < 10  # /dev/zero was read without end before
    with pytest.raises(EdgeSdkError, match="not a regular file"):
        edge_sdk.load("/dev/zero")  # the library refuses it too


@pytest.mark.parametrize("k", ["-3", "0"])
def test_run_top_k_must_be_positive(k, digits_models, capsys):
    _one_error_line(
        main(["run", str(digits_models["int8"]), "-i", str(digits_models["x"]), "--top-k", k]),
        capsys.readouterr().err,
        "--top-k must be at least 1",
        f"got {k}",
    )


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_run_into_a_closed_pipe_exits_quietly(json_flag, digits_models):
    """`edge-sdk run ... | head -1`: the reader has gone. Before: a BrokenPipeError traceback, exit 1.
    Now: nothing on stderr from edge-sdk, exit 141 as a Unix tool killed by SIGPIPE reports.
    The read end is closed before the child writes, so every write fails: no race with a reader."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = _cli("run", digits_models["int8"], "-i", digits_models["x"], *json_flag, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    ours = [line for line in result.stderr.splitlines() if not line.startswith("INFO: ")]  # LiteRT's own line
    assert ours == [], result.stderr


def _reference(tmp_path, digits_models):
    from edge_sdk.reference import write_reference

    model = edge_sdk.load(digits_models["int8"])
    x = np.load(digits_models["x"])[:8]
    name = model.outputs[0].name
    y = model.predict(x)  # stored as this model's own outputs, so the lineage check passes and the checks run
    path = write_reference(
        tmp_path / "golden.npz",
        {model.inputs[0].name: x},
        {name: y},
        float_model="float",
        float_sha256s=[model.sha256],
        quantized_outputs={name: y},
        quantized_sha256=model.sha256,
    )
    with np.load(path) as loaded:
        return {k: loaded[k] for k in loaded.files}


def _edit(meta):
    meta["outputs"][0]["shape"] = None
    return meta


@pytest.mark.parametrize(
    "case,edit",
    [
        ("meta-a-list", lambda meta: [meta]),
        ("no-inputs", lambda meta: {k: v for k, v in meta.items() if k != "inputs"}),
        ("inputs-a-string", lambda meta: {**meta, "inputs": "image"}),
        ("input-without-name", lambda meta: {**meta, "inputs": [{"nom": "image", "shape": [8, 8, 8, 1]}]}),
        ("shape-null", _edit),
        (
            "float-sha-a-number",
            lambda meta: {**meta, "float_sha256": 5, "float_sha256s": None, "quantized_sha256": None},
        ),
        ("float-shas-a-dict", lambda meta: {**meta, "float_sha256s": {"a": 1}}),
    ],
)
def test_malformed_reference_files_are_refused_clearly(case, edit, tmp_path, digits_models, capsys):
    arrays = _reference(tmp_path, digits_models)
    assert main(["parity", "--reference", str(tmp_path / "golden.npz"), str(digits_models["int8"])]) == 0
    capsys.readouterr()
    arrays["meta"] = np.array(json.dumps(edit(json.loads(str(arrays["meta"])))))
    bad = tmp_path / f"{case}.npz"
    np.savez(bad, **arrays)
    # the message names the broken field ('meta.inputs', ...), not a "missing array 'name'" it never had
    _one_error_line(
        main(["parity", "--reference", str(bad), str(digits_models["int8"])]),
        capsys.readouterr().err,
        str(bad),
        "'meta",
    )


def test_a_npy_given_as_the_reference_says_what_was_expected(tmp_path, digits_models, capsys):
    _one_error_line(
        main(["parity", "--reference", str(digits_models["x"]), str(digits_models["int8"])]),
        capsys.readouterr().err,
        "is a .npy array; expected the .npz written by --write-reference",
    )


def test_an_unexpected_exception_is_one_line_unless_debugging(monkeypatch, capsys):
    import edge_sdk.cli.inspect as inspect_cli

    def broken(args):
        raise RuntimeError("boom\nline two of a long native message")

    monkeypatch.setattr(inspect_cli, "run", broken)
    monkeypatch.delenv("EDGE_SDK_DEBUG", raising=False)
    assert main(["inspect", "m.tflite"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == "error: unexpected RuntimeError: boom (an edge-sdk bug; please report it; "
        "EDGE_SDK_DEBUG=1 shows the traceback)"
    )
    monkeypatch.setenv("EDGE_SDK_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["inspect", "m.tflite"])


def test_an_os_error_is_one_line_naming_the_file(monkeypatch, capsys):
    import edge_sdk.cli.inspect as inspect_cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/secret/m.tflite")

    monkeypatch.setattr(inspect_cli, "run", denied)
    assert main(["inspect", "m.tflite"]) == 2
    assert capsys.readouterr().err.strip() == "error: /secret/m.tflite: Permission denied"


def test_tensorflow_installed_but_failing_to_import_is_one_line(tmp_path):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise TypeError('Descriptors cannot be created directly.\\n"
        "If this call came from a _pb2.py file, your generated code is out of date')\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04")
    for command in (
        ["convert", tmp_path / "m.keras", "--recipe", "int8", "--out", tmp_path / "o"],
        ["parity", tmp_path / "m.keras", "q.tflite", "--data", "digits"],
    ):
        result = _cli(*command, env_extra=env)
        _one_error_line(
            result.returncode,
            result.stderr,
            "is installed but failed to import",
            "TypeError: Descriptors cannot be created directly.",
            "pip install --force-reinstall",
        )


def test_a_file_write_failure_in_convert_is_not_blamed_on_tensorflow(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorflow")
    import converters.pipeline

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "int8.tflite"))

    monkeypatch.setattr(converters.pipeline, "run", disk_full)
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04")
    code = main(["convert", str(tmp_path / "m.keras"), "--recipe", "int8", "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    _one_error_line(code, err, "could not read or write", "int8.tflite: No space left on device")
    assert "TensorFlow" not in err


@pytest.mark.parametrize("flag", ["--data", "--labels", "--calibration"])
def test_parity_data_files_of_the_wrong_kind_say_what_came_before_tensorflow(
    flag, tmp_path, digits_models, capsys, monkeypatch
):
    monkeypatch.setattr("edge_sdk.cli.parity.require_convert_stack", lambda command: pytest.fail("TF first"))
    files = _array_files(tmp_path)
    argv = ["parity", "float_dir", str(digits_models["int8"]), "--data", str(digits_models["x"])]
    argv += [flag, str(files / "objects.npy")] if flag != "--data" else []
    if flag == "--data":
        argv[-1] = str(files / "objects.npy")
    _one_error_line(main(argv), capsys.readouterr().err, f"{flag} ", "holds Python objects (dtype object)")
