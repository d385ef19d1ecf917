"""SIGKILL in the middle of the runtime's atomic writes leaves the destination whole, and a rerun succeeds."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.fileio import atomic_write_bytes, clean_stale_temporaries

SIZE = 8 << 20
WRITER = {
    "file": """
import sys
from edge_sdk.fileio import atomic_write_bytes
dest, size = sys.argv[1], int(sys.argv[2])
version = 0
while True:
    version = (version + 1) % 250 + 1
    atomic_write_bytes(dest, bytes([version]) * size)
""",
    "dir": """
import sys
from edge_sdk.fileio import atomic_output_dir
dest, size = sys.argv[1], int(sys.argv[2])
version = 0
while True:
    version = (version + 1) % 250 + 1
    with atomic_output_dir(dest) as tmp:
        (tmp / "model.tflite").write_bytes(bytes([version]) * size)
        (tmp / "model.json").write_text(str(version))
""",
}


def _check_file(dest: Path) -> int:
    data = dest.read_bytes()
    assert len(data) == SIZE and data == bytes([data[0]]) * SIZE, "the destination holds a partial write"
    return data[0]


def _check_dir(dest: Path) -> int:
    assert sorted(p.name for p in dest.iterdir()) == ["model.json", "model.tflite"]
    version = int((dest / "model.json").read_text())
    data = (dest / "model.tflite").read_bytes()
    assert data == bytes([version]) * SIZE, "the model and its manifest come from different writes"
    return version


def _freeze_mid_write(child: subprocess.Popen, directory: Path, deadline: float) -> bool:
    """SIGSTOP the writer at a moment its temporary exists (a write in progress); False if none was seen.

    Waiting for the temporary instead of sleeping a fixed time makes the kill land mid-write however
    loaded the machine is (a fixed sleep on a busy machine can end before the child has even started).
    """
    def writing() -> bool:
        return any(p.name.startswith(".") for p in directory.iterdir())

    while time.monotonic() < deadline:
        if writing():
            os.kill(child.pid, signal.SIGSTOP)
            if writing():
                return True
            os.kill(child.pid, signal.SIGCONT)  # the write finished in between: let it go on
        time.sleep(0.001)
    return False


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_sigkill_mid_write_leaves_a_whole_artifact(kind, tmp_path):
    dest = tmp_path / ("model.bin" if kind == "file" else "artifact")
    check = _check_file if kind == "file" else _check_dir
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH")])))
    killed_mid_write = 0
    versions = set()
    for trial in range(4):
        child = subprocess.Popen([sys.executable, "-c", WRITER[kind], str(dest), str(SIZE)], env=env)
        try:
            deadline = time.monotonic() + 60
            while not dest.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert dest.exists(), "the writer never produced its first artifact"
            if trial % 2:  # odd trials: certainly mid-write
                assert _freeze_mid_write(child, tmp_path, time.monotonic() + 60), "no write in progress seen in 60 s"
            else:  # even trials: whenever the clock says, mid-write or between writes
                time.sleep(0.05 + 0.07 * trial)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        assert child.returncode == -signal.SIGKILL
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        killed_mid_write += bool(leftovers)
        versions.add(check(dest))
        assert clean_stale_temporaries(tmp_path) == len(leftovers)
        assert [p.name for p in tmp_path.iterdir()] == [dest.name]
    assert killed_mid_write >= 1, "no kill landed during a write; the test proved nothing"
    # A rerun after the kill succeeds.
    if kind == "file":
        atomic_write_bytes(dest, b"\x07" * SIZE)
        assert _check_file(dest) == 7
    assert versions


def test_replaced_directory_is_never_absent(tmp_path):
    """A reader polling while a writer replaces the directory always finds one whole version."""
    from edge_sdk.fileio import _exchange

    probe_a, probe_b = tmp_path / "a", tmp_path / "b"
    probe_a.mkdir()
    probe_b.mkdir()
    if not _exchange(probe_a, probe_b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: directories are replaced with two renames")
    dest = tmp_path / "artifact"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", WRITER["dir"], str(dest), "4096"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not dest.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = set()
        stop, give_up = time.monotonic() + 2.0, time.monotonic() + 60
        # at least 2 s of polling, longer on a busy machine until a replacement has been seen
        while time.monotonic() < stop or (len(seen) < 2 and time.monotonic() < give_up):
            try:
                version = (dest / "model.json").read_text()
            except FileNotFoundError:
                pytest.fail("the destination was absent while a new version replaced it")
            seen.add(version)
    finally:
        child.kill()
        child.wait()
    assert len(seen) > 1, "the writer never replaced the directory while we read; the test proved nothing"
