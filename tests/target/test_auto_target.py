"""``edge-sdk convert --recipe auto --target ssh://``: the candidates' latency measured on a device over SSH.

The "device" is an OpenSSH server this test starts on 127.0.0.1 (``sshd_fixture``) running this checkout's
light runtime; the conversion itself needs TensorFlow, so the test is skipped in the lanes that lack it.
"""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sshd_fixture import find_sshd, start_sshd

import edge_sdk

REMOTE_COMMAND = (
    f"env PYTHONPATH={shlex.quote(str(Path(edge_sdk.__file__).parents[1]))} {shlex.quote(sys.executable)} -m edge_sdk"
)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if find_sshd() is None:
        pytest.skip("sshd is not installed (Debian: apt-get install openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd-auto"))
    yield server
    server.stop()


@pytest.mark.slow
def test_auto_measures_every_candidate_on_the_target(sshd, tmp_path):
    pytest.importorskip("tensorflow")
    from training.tiny_models import digits_data, train_tiny_digits_cnn

    x, y = digits_data()
    train_tiny_digits_cnn(x[:500], y[:500], epochs=3).save(tmp_path / "tiny.keras")
    np.save(tmp_path / "calib.npy", x[:200])
    np.savez(tmp_path / "eval.npz", image=x[500:], y=y[500:])
    out = tmp_path / "out"
    # the reachable and the unreachable device, two independent CLI processes started at once (each pays the
    # TensorFlow import side by side, not one after the other)
    good = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_sdk",
            "convert",
            str(tmp_path / "tiny.keras"),
            "--recipe",
            "auto",
            "--calibration",
            str(tmp_path / "calib.npy"),
            "--eval",
            str(tmp_path / "eval.npz"),
            "--out",
            str(out),
            "--quiet",
            "--target",
            "ssh://edge-loopback",
            "--set",
            f"auto.ssh_config={sshd.client_config}",
            "--set",
            f"auto.remote_command={REMOTE_COMMAND}",
            "--set",
            "auto.candidates=dynamic,int8",
            "--set",
            "auto.bench_seconds=0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # a device that cannot be reached is an error with exit 2 before any candidate is built, never a choice
    # made on local timings
    bad = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_sdk",
            "convert",
            str(tmp_path / "tiny.keras"),
            "--recipe",
            "auto",
            "--calibration",
            str(tmp_path / "calib.npy"),
            "--eval",
            str(tmp_path / "eval.npz"),
            "--out",
            str(tmp_path / "bad"),
            "--target",
            "ssh://edge-stranger",
            "--set",
            f"auto.ssh_config={sshd.client_config}",
            "--set",
            "auto.candidates=dynamic",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done_stdout, done_stderr = good.communicate(timeout=600)
        _, bad_stderr = bad.communicate(timeout=600)
    finally:  # a hung child must not outlive the test
        for child in (good, bad):
            if child.poll() is None:
                child.kill()
    assert good.returncode == 0, done_stderr[-2000:]
    record = json.loads((out / "summary.json").read_text())["comparisons"]["auto"]
    assert record["latency"]["target"] == "ssh://edge-loopback" and record["latency"]["device"]
    rows = {r["name"]: r for r in record["table"]}
    assert set(rows) == {"float32", "dynamic", "int8"}
    assert all(r["status"] == "ok" and r["median_us"] > 0 and r["p90_us"] >= r["median_us"] for r in rows.values())
    assert "latency ssh://edge-loopback" in done_stdout
    assert bad.returncode == 2 and "error: ssh to ssh://edge-stranger failed" in bad_stderr, bad_stderr[-2000:]
    assert "building candidate" not in bad_stderr
    assert not (tmp_path / "bad").exists()
