"""What TensorFlow op determinism costs in training time, measured side by side.

Each timed run is a fresh process (op determinism is process-wide); on and off
alternate so a change in machine load hits both. Two paths are timed: the
converter's trainer (``converters.finetune.compile_and_fit`` with the random-shift
augmentation ``convert`` uses for zoo models) and ``training.train.fit``.

    .venv/bin/python benchmarks/determinism_cost.py 3        # 3 runs of each, on and off
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 8


def timed_run(path: str, mode: str) -> float:
    """Train the zoo ``cnn`` on digits for :data:`EPOCHS` epochs in this process; return the fit seconds."""
    sys.path.insert(0, str(ROOT))
    if path == "convert":
        os.environ["EDGE_SDK_DETERMINISTIC"] = "1" if mode == "on" else "0"
        import converters._tf  # noqa: F401  (applies EDGE_SDK_DETERMINISTIC)
        from converters.finetune import augment_shift, compile_and_fit
        from training import datasets, zoo

        data = datasets.load("digits", seed=0)
        model = zoo.build("cnn", data, seed=0)
        start = time.perf_counter()
        compile_and_fit(
            model,
            {"image": data.x_train},
            data.y_train,
            epochs=EPOCHS,
            batch_size=64,
            learning_rate=1e-3,
            seed=0,
            shift=augment_shift(8, 8),
        )
    else:
        from training import train

        start = time.perf_counter()
        train.fit("cnn", "digits", epochs=EPOCHS, progress=False, early_stopping=False, deterministic=(mode == "on"))
    return time.perf_counter() - start


def main(runs: int) -> None:
    """Alternate on/off runs of both paths in child processes and print the medians and their ratio."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    for path in ("convert", "train"):
        times = {"on": [], "off": []}
        for i in range(runs):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                done = subprocess.run(
                    [sys.executable, __file__, "child", path, mode], capture_output=True, text=True, env=env, check=True
                )
                times[mode].append(round(float(done.stdout.strip().splitlines()[-1]), 3))
        on, off = statistics.median(times["on"]), statistics.median(times["off"])
        print(
            f"{path}: determinism on {times['on']} s, off {times['off']} s, median on/off = {on / off:.2f}x", flush=True
        )


if __name__ == "__main__":
    if sys.argv[1] == "child":
        print(timed_run(sys.argv[2], sys.argv[3]))
    else:
        main(int(sys.argv[1]))
