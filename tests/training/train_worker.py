"""Child process for the resume and multi-worker tests: train, optionally SIGKILL itself mid-epoch.

usage: python train_worker.py MODEL DATASET EPOCHS OUT [--kill-epoch E --kill-batch B]
       [--strategy S] [--steps N] [--weights FILE.npz]
Prints one JSON line with resumed_from_epoch, epochs_run and the test metrics.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("dataset")
    parser.add_argument("epochs", type=int)
    parser.add_argument("out")
    parser.add_argument("--kill-epoch", type=int, default=None)
    parser.add_argument("--kill-batch", type=int, default=2)
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    from training import train
    from training.distributed import make_strategy

    strategy = make_strategy(args.strategy)  # before any other TensorFlow op
    import numpy as np
    import tf_keras

    class KillMidEpoch(tf_keras.callbacks.Callback):
        """SIGKILL (no cleanup, like an OOM kill or a pre-empted node) inside epoch ``kill_epoch``."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == args.kill_epoch and batch == args.kill_batch:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [KillMidEpoch()] if args.kill_epoch is not None else []
    result = train.fit(
        args.model,
        args.dataset,
        epochs=args.epochs,
        out_dir=args.out,
        strategy=strategy,
        callbacks=callbacks,
        progress=False,
        early_stopping=False,
        histograms=False,
        steps_per_epoch=args.steps,
    )
    if args.weights:
        np.savez(args.weights, *result.model.get_weights())
    print(
        json.dumps(
            {
                "resumed_from_epoch": result.resumed_from_epoch,
                "epochs_run": result.epochs_run,
                "metrics": result.metrics,
            }
        )
    )


if __name__ == "__main__":
    main()
