"""``edge-sdk bench --target ssh://`` against an OpenSSH server this test starts on 127.0.0.1.

Where the arm64 rootfs of ``make test-arm64`` exists (and we are root), a second server's forced
command enters that chroot, so the "device" is an emulated aarch64 Debian with its own venv.
"""

import glob
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from sshd_fixture import find_sshd, start_sshd

import edge_sdk
from edge_sdk.remote import RemoteError, parse_target

REPO = Path(__file__).resolve().parents[2]
# The device runs this very edge_sdk (the checkout first on its PYTHONPATH) with this Python.
REMOTE_COMMAND = (
    f"env PYTHONPATH={shlex.quote(str(Path(edge_sdk.__file__).parents[1]))} {shlex.quote(sys.executable)} -m edge_sdk"
)


def cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if find_sshd() is None:
        pytest.skip(
            "sshd is not installed (Debian: apt-get install openssh-server; scripts/install-debian-deps.sh installs it)"
        )
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_parse_target():
    assert parse_target("ssh://pi@raspberrypi.local:2222").destination == "pi@raspberrypi.local"
    assert parse_target("ssh://pi@raspberrypi.local:2222").port == 2222
    assert parse_target("ssh://phone").user is None and parse_target("ssh://phone").port is None
    assert parse_target("ssh://root@[::1]:22").host == "::1"
    with pytest.raises(RemoteError, match="password in the URL is refused"):
        parse_target("ssh://pi:secret@raspberrypi.local")
    with pytest.raises(RemoteError, match=r"expected ssh://\[USER@\]HOST\[:PORT\], got 'http://pi'"):
        parse_target("http://pi")
    with pytest.raises(RemoteError, match="port must be 1..65535, got 70000"):
        parse_target("ssh://pi@host:70000")


def test_bench_options_are_forwarded_to_the_device():
    from edge_sdk.bench import BenchOptions
    from edge_sdk.remote import bench_arguments

    sweep = bench_arguments(
        BenchOptions(
            runs=7,
            threads=(1, 2),
            batches=(1, 8),
            accelerators=(None, "cpu"),
            backend="tflite-runtime",
            verify=False,
            keep_samples=False,
        )
    )
    assert sweep == [
        "--warmup",
        "10",
        "--threads",
        "1,2",
        "--seed",
        "0",
        "--quiet",
        "--runs",
        "7",
        "--batch",
        "1,8",
        "--accelerator",
        "interpreter,cpu",
        "--backend",
        "tflite-runtime",
        "--no-verify",
        "--no-samples",
    ]
    plain = bench_arguments(BenchOptions(duration=2.5, batch=4))
    assert "--accelerator" not in plain and plain[-4:] == ["--duration", "2.5", "--batch", "4"]


def test_bench_on_the_loopback_device_prints_the_local_table_and_compares(sshd, target_models, tmp_path):
    models = [target_models["float32"], target_models["int8"]]
    before = set(glob.glob("/tmp/edge-sdk-bench.*"))
    remote_json = tmp_path / "device.json"
    done = cli(
        "bench",
        *models,
        "--runs",
        "20",
        "--warmup",
        "2",
        "--target",
        "ssh://edge-loopback",
        "--ssh-config",
        sshd.client_config,
        "--remote-command",
        REMOTE_COMMAND,
        "--json",
        remote_json,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(remote_json.read_text())
    assert doc["target"]["url"] == "ssh://edge-loopback" and doc["target"]["transport"] == "ssh"
    assert doc["device"]["machine"] and doc["device"]["cores"] and doc["device"]["python"]
    assert [m["path"] for m in doc["models"]] == [str(m) for m in models]  # mapped back to the local files
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"] and all(r["runs"] == 20 for r in doc["results"])
    assert set(glob.glob("/tmp/edge-sdk-bench.*")) == before  # the device's temp dir is gone
    assert "float32.tflite" in done.stdout and "int8.tflite" in done.stdout

    local_json = tmp_path / "local.json"
    local = cli("bench", *models, "--runs", "20", "--warmup", "2", "--json", local_json)
    assert local.returncode == 0, local.stderr
    # The same table as a local run: the same column headers and model rows, the device line first.
    remote_lines, local_lines = done.stdout.splitlines(), local.stdout.splitlines()
    assert remote_lines[0].startswith("device: ") and remote_lines[2].split() == local_lines[2].split()
    assert (
        [line.split()[0] for line in remote_lines[4:6]]
        == [line.split()[0] for line in local_lines[4:6]]
        == ["float32.tflite", "int8.tflite"]
    )
    compared = cli("bench", "compare", local_json, remote_json, "--json", "-")
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)["rows"]
    assert [r["model"] for r in rows] == ["float32.tflite", "int8.tflite"]
    assert all(None not in r["median_us"] for r in rows)


def test_same_target_by_user_host_and_port_with_real_inputs(sshd, target_models):
    done = cli(
        "bench",
        target_models["float32"],
        "--runs",
        "5",
        "--warmup",
        "1",
        "--json",
        "-",
        "--input",
        target_models["x"],
        "--target",
        f"ssh://{sshd.user}@127.0.0.1:{sshd.port}",
        "--ssh-config",
        sshd.client_config,
        "--remote-command",
        REMOTE_COMMAND,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["target"]["url"] == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    assert doc["options"]["input_path"] == "input/x.npy" and doc["results"][0]["status"] == "ok"


def test_missing_edge_sdk_on_the_device_names_the_install(sshd, target_models):
    done = cli(
        "bench",
        target_models["int8"],
        "--runs",
        "5",
        "--target",
        "ssh://edge-loopback",
        "--ssh-config",
        sshd.client_config,
        "--remote-command",
        "/nonexistent/bin/edge-sdk",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: /nonexistent/bin/edge-sdk is not installed on ssh://edge-loopback")
    assert "pip install" in done.stderr


def test_refused_key_fails_at_once_without_a_prompt(sshd, target_models):
    done = cli(
        "bench",
        target_models["int8"],
        "--runs",
        "5",
        "--target",
        "ssh://edge-stranger",
        "--ssh-config",
        sshd.client_config,
        "--remote-command",
        REMOTE_COMMAND,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ssh to ssh://edge-stranger failed: ")
    assert "Permission denied" in done.stderr and "BatchMode=yes" in done.stderr


def _arm64_rootfs():
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-sdk" / "arm64"
    for rootfs in sorted(cache.glob("rootfs-*")):
        if (
            (rootfs / ".edge-sdk-rootfs-complete").is_file()
            and (rootfs / "usr/bin/env").is_file()
            and list((rootfs / "opt/edge-sdk-venv/lib").glob("python3*/site-packages/edge_sdk"))
        ):
            return rootfs
    return None


#: The kernel's qemu-user handler for aarch64 executables (what update-binfmts --enable qemu-aarch64 makes).
QEMU_BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


def _qemu_binfmt_missing(entry=None):
    """None when aarch64 executables run here through qemu (the binfmt entry exists and is enabled); else why not.

    After a reboot (or while ``make test-arm64`` is still building its rootfs) the rootfs may be complete
    while the handler is not registered, and the chroot fails with ``Exec format error`` (issue 26 s6).
    """
    entry = QEMU_BINFMT if entry is None else entry
    try:
        text = entry.read_text()
    except OSError:
        return (
            f"the qemu-aarch64 binfmt handler is not registered ({entry} is missing; "
            "make test-arm64 registers it, or: update-binfmts --enable qemu-aarch64)"
        )
    if not text.startswith("enabled"):
        return f"the qemu-aarch64 binfmt handler is registered but disabled ({entry}: {text.splitlines()[:1]})"
    return None


def _emulated_device_missing(lane):
    """None when the emulated aarch64 device can run; else the reason to skip, naming what is missing."""
    if find_sshd() is None:
        return "needs sshd (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "needs root (chroot into the arm64 rootfs)"
    if not lane.is_file():
        return f"needs the checkout's {lane}"
    if _arm64_rootfs() is None:
        return "needs a complete arm64 rootfs with edge-sdk installed (run make test-arm64 first)"
    return _qemu_binfmt_missing()


def test_the_emulated_device_check_names_a_missing_or_disabled_qemu_handler(tmp_path):
    assert "not registered" in _qemu_binfmt_missing(tmp_path / "qemu-aarch64")
    (tmp_path / "off").write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    assert "disabled" in _qemu_binfmt_missing(tmp_path / "off")
    (tmp_path / "on").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    assert _qemu_binfmt_missing(tmp_path / "on") is None


def test_bench_on_the_emulated_aarch64_device(tmp_path, target_models):
    lane = REPO / "scripts/arm64/lane.sh"
    missing = _emulated_device_missing(lane)
    if missing:
        pytest.skip(f"the emulated aarch64 device: {missing}")
    server = start_sshd(tmp_path / "sshd", forced_command=f"{lane} ssh-command")
    try:
        out = tmp_path / "aarch64.json"
        done = cli(
            "bench",
            target_models["int8"],
            "--runs",
            "10",
            "--warmup",
            "2",
            "--target",
            "ssh://edge-loopback",
            "--ssh-config",
            server.client_config,
            "--json",
            out,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(out.read_text())
        assert doc["device"]["machine"] == "aarch64"
        assert doc["results"][0]["status"] == "ok" and doc["results"][0]["backend"]["name"] == "litert"
    finally:
        server.stop()
