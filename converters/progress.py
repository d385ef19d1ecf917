"""The progress a conversion shows: numbered step lines and per-epoch bars on stderr (tqdm when installed)."""

from __future__ import annotations

import sys
import time
from typing import Any

from edge_sdk.console import progress_bar


class Progress:
    """Step lines and per-epoch bars on stderr (tqdm when installed)."""

    def __init__(self, enabled: bool = True, total_steps: int = 0):
        self.enabled = enabled
        self.step = 0
        self.total = total_steps
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        """Print one progress line to stderr."""
        if self.enabled:
            self.step += 1
            elapsed = time.perf_counter() - self.started
            total = f"/{self.total}" if self.total else ""
            print(f"[convert {self.step}{total} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """Print one progress line about the current step, without counting a new step (the ``k/n`` stays)."""
        if self.enabled:
            elapsed = time.perf_counter() - self.started
            total = f"/{self.total}" if self.total else ""
            print(f"[convert {max(self.step, 1)}{total} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """Print a warning to stderr (always)."""
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def epochs(self, desc: str, epochs: int) -> list[Any]:
        """A Keras callback list showing one tqdm bar, labelled ``desc``, over ``epochs``."""
        if not self.enabled:
            return []
        from converters._tf import tf_keras

        class EpochBar(tf_keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = progress_bar(epochs, f"  {desc}", unit="epoch")

            def on_epoch_end(self, epoch, logs=None):
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")
                    self.bar.update(1)

            def on_train_end(self, logs=None):
                if self.bar is not None:
                    self.bar.close()

        return [EpochBar()]
