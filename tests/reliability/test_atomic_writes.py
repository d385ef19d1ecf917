"""SIGKILL in the middle of the runtime's atomic writes leaves the destination whole, and a rerun succeeds."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_sdk.errors import OutputError
from edge_sdk.fileio import (
    atomic_output_dir,
    atomic_output_path,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_temporaries,
)

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
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    )
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
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    )
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


# -- failures, interrupts and links (issue #12 section 1) ------------------------------------------------


def _disk_full_under(monkeypatch, directory: Path) -> None:
    """Make every os.write to a file under ``directory`` fail as a full disk does."""
    real_write = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    dest = tmp_path / "model.bin"
    atomic_write_bytes(dest, b"old")
    _disk_full_under(monkeypatch, tmp_path)
    with pytest.raises(OutputError, match=r"cannot write .*model.bin: No space left on device"):
        atomic_write_bytes(dest, b"new" * 1000)
    assert isinstance(OutputError("x"), OSError)  # callers that catch write failures as OSError still do
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_dev_full_is_refused_not_replaced(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with pytest.raises(OutputError, match="character device, not a regular file"):
        atomic_write_text("/dev/full", "x")
    assert Path("/dev/full").is_char_device()


def test_a_writer_that_fails_leaves_no_temporary(tmp_path):
    dest = tmp_path / "out.npz"
    dest.write_bytes(b"old")
    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_output_path(dest) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_path(dest) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_a_file_output_never_replaces_a_directory(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is a directory"):
        atomic_write_bytes(folder, b"x")
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_output_path(folder) as tmp:
            tmp.write_bytes(b"x")
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="never replaces a file"):
        with atomic_output_dir(folder / "notes.txt"):
            pass
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_symlinked_output_directory_is_replaced_through_the_link_without_stale_temporaries(tmp_path):
    """Before: the link itself was swapped for a directory and a `.out.tmp-*` link was left behind."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_text("v1")
    link = tmp_path / "out"
    link.symlink_to("real")
    with atomic_output_dir(link) as tmp:
        (tmp / "new.txt").write_text("v2")
    assert link.is_symlink() and os.readlink(link) == "real"
    assert [p.name for p in real.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "real"]


def test_a_symlinked_output_file_is_written_through_and_a_dangling_link_refused(tmp_path):
    (tmp_path / "target.json").write_text("{}")
    (tmp_path / "link.json").symlink_to("target.json")
    atomic_write_text(tmp_path / "link.json", '{"v": 2}')
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "target.json").read_text() == '{"v": 2}'
    (tmp_path / "dangling.json").symlink_to(tmp_path / "missing" / "x.json")
    with pytest.raises(OutputError, match="dangling link"):
        atomic_write_text(tmp_path / "dangling.json", "{}")
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.json", "link.json", "target.json"]


def test_private_files_are_created_with_their_mode_from_the_first_byte(tmp_path, monkeypatch):
    seen = []
    real_write = os.write

    def write(fd, data):
        seen.append(os.fstat(fd).st_mode & 0o777)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    atomic_write_bytes(tmp_path / "k.key", b"secret", mode=0o600)
    assert seen and set(seen) == {0o600}
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600


SIGINT_WRITER = """
import sys
from edge_sdk.fileio import atomic_write_bytes
dest, size = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
version = 0
try:
    while True:
        version = version % 250 + 1
        atomic_write_bytes(dest, bytes([version]) * size)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_mid_write_leaves_a_whole_file_and_no_temporary(tmp_path):
    dest = tmp_path / "model.bin"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    )
    for trial in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", SIGINT_WRITER, str(dest), str(SIZE)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 60
            while not dest.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.03 + 0.05 * trial)
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=60) == 130
        finally:
            child.kill()
            child.wait()
        _check_file(dest)
        assert [p.name for p in tmp_path.iterdir()] == ["model.bin"], "Ctrl-C left a temporary behind"
