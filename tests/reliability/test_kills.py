"""SIGTERM and SIGHUP during convert (issue 26 section 4) are handled as Ctrl-C is: the ``.OUT.tmp-*`` staging
folder is removed, the onnx2tf child stopped, ``$TMPDIR/edge-sdk-onnx-*`` removed, exit 143 / 129."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_convert_removes_the_staging_folder_and_exits_128_plus_n(
    digits_models, tmp_path, monkeypatch, capsys, signum, code
):
    from converters import pipeline

    seen = []

    def killed_mid_run(staging, *args, **kwargs):
        (staging / "model.tflite").write_bytes(b"half")
        seen.append(staging)
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.SIG_IGN):  # sending it would end pytest itself
            raise AssertionError(f"convert installed no handler for {signal.Signals(signum).name}")
        os.kill(os.getpid(), signum)  # delivered here, as a `kill` from outside would be
        time.sleep(5)
        raise AssertionError("the signal did not stop the run")

    monkeypatch.setattr(pipeline, "_run_in", killed_mid_run)
    out = tmp_path / "out"
    before = signal.getsignal(signum)
    assert main(["convert", str(digits_models["float32"]), "--recipe", "dynamic", "--out", str(out)]) == code
    assert f"terminated by {signal.Signals(signum).name}" in capsys.readouterr().err
    assert seen and not seen[0].exists() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert signal.getsignal(signum) is before  # the handler is the command's only


def test_an_embedding_programs_own_handler_is_left_alone(digits_models, tmp_path, monkeypatch):
    from converters import pipeline

    got = []
    monkeypatch.setattr(signal, "SIGHUP", signal.SIGHUP)
    previous = signal.signal(signal.SIGHUP, lambda *a: got.append("own"))
    try:

        def run_in(staging, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGHUP)
            raise KeyboardInterrupt  # end the run the ordinary way

        monkeypatch.setattr(pipeline, "_run_in", run_in)
        assert (
            main(["convert", str(digits_models["float32"]), "--recipe", "dynamic", "--out", str(tmp_path / "out")])
            == 130
        )
        assert got == ["own"]
    finally:
        signal.signal(signal.SIGHUP, previous)


def _tiny_onnx(path: Path) -> None:
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.3, (16, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [w, b],
    )
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


def _children(pid: int) -> list:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_sigterm_during_an_onnx_convert_stops_onnx2tf_and_leaves_nothing(tmp_path):
    from converters.onnx2tf_run import side_folder

    if not (side_folder() / "onnx2tf" / "__init__.py").is_file():
        pytest.skip(f"onnx2tf is not in its side folder {side_folder()} (make setup)")
    model = tmp_path / "tiny.onnx"
    _tiny_onnx(model)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-m", "edge_sdk", "convert", str(model), "--recipe", "dynamic", "--out", str(work / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    onnx2tf = None
    deadline = time.monotonic() + 240
    try:
        while onnx2tf is None and child.poll() is None and time.monotonic() < deadline:
            onnx2tf = next((c for c in _children(child.pid) if "onnx2tf" in _cmdline(c)), None)
            time.sleep(0.05)
        assert onnx2tf is not None, ("onnx2tf never started", child.poll(), child.stderr.read()[-2000:])
        assert list(work.glob(".out.tmp-*")) and list(tmpdir.glob("edge-sdk-onnx-*"))  # mid-run: both exist
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143, err.decode()[-2000:]
    assert b"terminated by SIGTERM" in err
    assert not Path(f"/proc/{onnx2tf}").exists() or "onnx2tf" not in _cmdline(onnx2tf)  # stopped and reaped
    assert list(work.iterdir()) == []  # no .out.tmp-*, no out
    assert list(tmpdir.glob("edge-sdk-onnx-*")) == []
