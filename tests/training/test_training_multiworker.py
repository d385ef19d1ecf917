"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1 finish with identical weights."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from training_helpers import HERE, subprocess_env

WORKER = str(HERE / "train_worker.py")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_in_sync(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "run"
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    WORKER,
                    "cnn-student",
                    "digits",
                    "1",
                    str(out),
                    "--strategy",
                    "multiworker",
                    "--steps",
                    "6",
                    "--weights",
                    str(tmp_path / f"w{index}.npz"),
                ],
                env=subprocess_env(TF_CONFIG=tf_config, OMP_NUM_THREADS="1"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    init = np.load(tmp_path / "w0.npz")  # weights moved away from a fresh build: training really happened
    from training import datasets, zoo

    fresh = zoo.build("cnn-student", datasets.load("digits")).get_weights()
    assert not np.array_equal(fresh[0], init[init.files[0]])
    # the chief exports into --out, the other worker into out/workers/worker-1
    assert (out / "savedmodel" / "saved_model.pb").is_file()
    assert (out / "workers" / "worker-1" / "metrics.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "multiworker"
