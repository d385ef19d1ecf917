"""A fake device for ``bench --target ssh://``: a stand-in ``ssh`` executable first on PATH.

No sshd, no network: the stand-in is a small sh script that reads the tar of models ssh would send and
answers with a crafted document, exit status and stderr, or (``run_here``) runs the remote script on
this machine as a device would, so a real ``edge-sdk bench`` answers.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

FAKE_SSH = r"""#!/bin/sh
# edge-sdk's test stand-in for ssh: the answer comes from $EDGE_SDK_FAKE_DEVICE
dir="$EDGE_SDK_FAKE_DEVICE"
if [ -f "$dir/run_here" ]; then
    for last; do :; done   # ssh's last argument is the remote command line
    exec sh -c "$last"
fi
cat >/dev/null             # the models, as ssh would send them
[ -f "$dir/stderr" ] && cat "$dir/stderr" >&2
if [ -f "$dir/huge" ]; then
    printf '{"results": ['
    yes '1,' | head -c "$(cat "$dir/huge")"
else
    cat "$dir/answer"
fi
exit "$(cat "$dir/status")"
"""


class FakeDevice:
    """Sets what the next ``ssh`` answers; ``env`` is the environment that puts it first on PATH."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.state = root / "state"
        self.bin.mkdir(parents=True)
        self.state.mkdir()
        ssh = self.bin / "ssh"
        ssh.write_text(FAKE_SSH)
        ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.env = dict(
            os.environ, PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", EDGE_SDK_FAKE_DEVICE=str(self.state)
        )

    def _reset(self) -> None:
        for item in self.state.iterdir():
            item.unlink()

    def answer(self, document: Any, status: int = 0, stderr: str = "", raw: str | None = None) -> None:
        """The next ssh prints ``document`` as JSON (or ``raw`` text) and exits ``status``."""
        self._reset()
        text = raw if raw is not None else json.dumps(document)  # NaN stays NaN, as a lying device writes it
        (self.state / "answer").write_text(text)
        (self.state / "status").write_text(str(status))
        if stderr:
            (self.state / "stderr").write_text(stderr)

    def huge(self, size: int) -> None:
        """The next ssh answers ``size`` bytes of a results list that never ends."""
        self.answer(None, raw="")
        (self.state / "huge").write_text(str(size))

    def run_here(self) -> None:
        """The next ssh runs the remote script on this machine (a real ``edge-sdk bench`` answers)."""
        self._reset()
        (self.state / "run_here").write_text("")


def remote_path(model: Path, index: int = 0) -> str:
    """Where edge_sdk.remote puts ``model`` on the device (``m<i>/<parent>/<name>``)."""
    return f"m{index}/{Path(os.path.abspath(model)).parent.name}/{model.name}"


def valid_document(model: Path) -> dict[str, Any]:
    """A results document as a current device's ``edge-sdk bench --json -`` writes it, for ``model``."""
    path = remote_path(model)
    return {
        "format": "edge-sdk-bench/1",
        "created": "2026-12-05T12:00:00Z",
        "wall_time_s": 1.5,
        "device": {
            "cpu_model": "Cortex-A76",
            "device_model": "Raspberry Pi 5",
            "machine": "aarch64",
            "cores": {"logical": 4, "usable": 4},
            "cpu_max_mhz": 2400.0,
            "memory_total_mb": 8000.0,
            "os": {"system": "Linux", "release": "6.6", "distribution": "Debian 12"},
            "python": "3.11.2",
            "python_implementation": "CPython",
            "numpy": "1.26.4",
            "edge_sdk": "0.1.0",
            "backend": {"name": "litert", "version": "1.2.0"},
            "hostname": "pi",
        },
        "options": {
            "warmup": 10,
            "runs": 20,
            "duration": None,
            "threads": [1],
            "min_runs": 20,
            "block": 10,
            "timed_call": "Model.predict_all(inputs in storage dtype, raw=True)",
        },
        "models": [{"label": model.name, "path": path}],
        "results": [
            {
                "label": model.name,
                "model": model.name,
                "path": path,
                "threads": 1,
                "accelerator": "interpreter",
                "status": "ok",
                "error": None,
                "file_size_bytes": 1234,
                "load_ms": 3.2,
                "backend": {"name": "litert", "version": "1.2.0"},
                "kind": "int8",
                "inputs": [],
                "batch": 1,
                "input_source": "random",
                "first_inference_ms": 0.4,
                "warmup_runs": 10,
                "rss_before_mb": 50.0,
                "rss_after_mb": 51.0,
                "rss_added_mb": 1.0,
                "runs": 20,
                "latency_us": {
                    "mean": 120.0,
                    "median": 118.0,
                    "p90": 130.0,
                    "p99": 140.0,
                    "min": 110.0,
                    "max": 150.0,
                    "std": 8.0,
                },
                "throughput": {"inferences_per_s": 8333.3, "samples_per_s": 8333.3},
                "process_peak_rss_mb": 60.0,
                "samples_us": [118.0] * 20,
                "ratio_vs_first": 1.0,
            }
        ],
        "process_peak_rss_mb": 60.0,
        "profiling": {"available": False, "reason": "not exposed"},
        "recommendations": [],
    }
