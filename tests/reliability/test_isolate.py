"""isolate=True: a model that crashes the interpreter costs an exception, not the process."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

import edge_sdk
from edge_sdk import isolate
from edge_sdk.errors import CorruptModelError, NotTFLiteError


def test_isolated_load_gives_the_same_model(digits_models, digits_x):
    plain = edge_sdk.load(digits_models["int8"])
    isolated = edge_sdk.load(digits_models["int8"], isolate=True)
    np.testing.assert_array_equal(isolated.predict(digits_x), plain.predict(digits_x))
    report = isolate.check_in_child(digits_models["int8"].read_bytes(), "litert", 1)
    assert report["ok"] and report["outputs"] == {"probs": [1, 10]}


def test_the_crash_hook_really_kills_an_unisolated_child(digits_models, crash_hook):
    # Without this, the isolation tests below could pass with a hook that never fires.
    crash_hook("segv")
    code = f"import edge_sdk; edge_sdk.load({str(digits_models['float32'])!r}, isolate=False); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGSEGV, (done.returncode, done.stdout, done.stderr[-500:])
    assert "survived" not in done.stdout


def test_isolate_turns_a_segfault_into_corrupt_model_error(digits_models, crash_hook):
    crash_hook("segv")
    with pytest.raises(CorruptModelError, match="SIGSEGV") as info:
        edge_sdk.load(digits_models["float32"], isolate=True)
    assert "child process" in str(info.value)
    # This process is alive and still loads models in-process (no hook here).
    assert edge_sdk.load(digits_models["float32"]).predict(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 10)


def test_isolate_refuses_a_hanging_model_after_the_timeout(digits_models, crash_hook):
    crash_hook("hang")
    with pytest.raises(CorruptModelError, match="did not finish"):
        isolate.check_in_child(digits_models["float32"].read_bytes(), "litert", 1, timeout=3)


def test_child_errors_come_back_as_the_same_class(digits_models):
    data = digits_models["float32"].read_bytes()
    truncated = data[: len(data) // 2]
    with pytest.raises(CorruptModelError) as in_process:
        edge_sdk.load(truncated)
    with pytest.raises(CorruptModelError) as in_child:
        isolate.check_in_child(truncated, "litert", 1)
    assert str(in_child.value) == str(in_process.value)
    with pytest.raises(NotTFLiteError):  # refused before any child is started
        edge_sdk.load(b"\x00" * 64, isolate=True)


def _without_subgraphs(data: bytes) -> bytes:
    """Zero the root Model table's ``subgraphs`` field: the flatbuffer verifier passes it."""
    out = bytearray(data)
    root = int.from_bytes(out[0:4], "little")
    vtable = root - int.from_bytes(out[root : root + 4], "little", signed=True)
    out[vtable + 8 : vtable + 10] = b"\x00\x00"
    return bytes(out)


def test_litert_segfaults_on_a_model_without_subgraphs_and_the_runtime_refuses_it(digits_models):
    """A real LiteRT 2.3.0 crash found by tools/fuzz_tflite.py, now refused before LiteRT sees it."""
    bad = _without_subgraphs(digits_models["int8"].read_bytes())
    raw = (
        "import sys; from ai_edge_litert.interpreter import Interpreter; "
        "Interpreter(model_content=sys.stdin.buffer.read()); print('loaded')"
    )
    done = subprocess.run([sys.executable, "-c", raw], input=bad, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGSEGV, "LiteRT no longer crashes here: the pre-check may be obsolete"
    with pytest.raises(CorruptModelError, match="no subgraphs"):
        edge_sdk.load(bad)
    with pytest.raises(CorruptModelError, match="no subgraphs"):
        edge_sdk.load(bad, isolate=True)


def test_isolation_is_on_by_default_only_for_crash_prone_backends(digits_models, monkeypatch):
    pytest.importorskip("tensorflow")
    calls = []
    monkeypatch.setattr(isolate, "check_in_child", lambda data, backend, threads: calls.append(backend))
    edge_sdk.load(digits_models["float32"])
    assert calls == []
    edge_sdk.load(digits_models["float32"], backend="tf")
    assert calls == ["tf"]
    edge_sdk.load(digits_models["float32"], backend="tf", isolate=False)
    edge_sdk.load(digits_models["float32"], isolate=True)
    assert calls == ["tf", "litert"]


def test_signal_names():
    assert isolate.signal_name(-signal.SIGSEGV) == "SIGSEGV"
    assert isolate.signal_name(-signal.SIGBUS) == "SIGBUS"
    assert isolate.signal_name(3) == "exit status 3"
