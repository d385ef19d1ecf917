"""Is mnist training input-bound? Input pipeline throughput against the training step.

Run: .venv/bin/pytest benchmarks/test_bench_input_pipeline.py --benchmark-only -p no:randomly -s

Three measurements, in examples per second, batch 32 (the cnn default):
* the in-memory pipeline the trainer uses (cache -> shuffle -> batch -> prefetch), one epoch;
* the same split streamed from 4 TFRecord shards through interleave + parse (no cache);
* the cnn teacher's training step alone, fed one fixed batch from memory.
The ratio pipeline / step says how many times faster the input side is than
the model can consume; above 1 training is not input-bound. The last test also
times a real fit epoch against one on a fixed batch: the difference is what the
input pipeline costs in practice.
"""

import os
import statistics
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 32
RESULTS = {}


@pytest.fixture(scope="module")
def mnist():
    from training import datasets

    return datasets.load("mnist")


@pytest.fixture(scope="module")
def tfrecord_mnist(mnist, tmp_path_factory):
    from training import datasets, tfrecord

    path = tfrecord.write_dataset(mnist, tmp_path_factory.mktemp("mnist_tfr") / "mnist", shards=4)
    return datasets.load(path)


def _epoch(ds):
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n


def _throughput(fn, n_examples, rounds=5):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_examples / statistics.median(times), statistics.median(times)


def test_in_memory_pipeline_epoch(benchmark, mnist):
    ds = mnist.as_tf_dataset("train", batch_size=BATCH)
    _epoch(ds)  # fills the cache
    n = benchmark.pedantic(_epoch, args=(ds,), rounds=5, iterations=1, warmup_rounds=1)
    assert n == mnist.size("train")
    RESULTS["pipeline"] = n / benchmark.stats.stats.median
    benchmark.extra_info["examples_per_s"] = round(RESULTS["pipeline"])


def test_tfrecord_interleave_pipeline_epoch(benchmark, tfrecord_mnist):
    ds = tfrecord_mnist.as_tf_dataset("train", batch_size=BATCH, cache=False)
    n = benchmark.pedantic(_epoch, args=(ds,), rounds=3, iterations=1, warmup_rounds=1)
    assert n == tfrecord_mnist.size("train")
    RESULTS["tfrecord"] = n / benchmark.stats.stats.median
    benchmark.extra_info["examples_per_s"] = round(RESULTS["tfrecord"])


def test_training_step_vs_input_pipeline(benchmark, mnist):
    import tensorflow as tf

    from edge_sdk.report import format_table
    from training import train, zoo

    model = zoo.build("cnn", mnist)
    train._compile(model, mnist, 1e-3)
    steps = mnist.size("train") // BATCH
    fixed = tf.data.Dataset.from_tensors((mnist.x_train[:BATCH], mnist.y_train[:BATCH])).repeat().prefetch(1)
    real = mnist.as_tf_dataset("train", batch_size=BATCH, drop_remainder=True).repeat()
    model.fit(fixed, steps_per_epoch=5, epochs=1, verbose=0)  # trace once

    def step_epoch():
        model.fit(fixed, steps_per_epoch=steps, epochs=1, verbose=0)

    benchmark.pedantic(step_epoch, rounds=3, iterations=1)
    step_rate = steps * BATCH / benchmark.stats.stats.median
    real_rate, _ = _throughput(lambda: model.fit(real, steps_per_epoch=steps, epochs=1, verbose=0), steps * BATCH, 3)
    pipeline = (
        RESULTS.get("pipeline")
        or _throughput(lambda: _epoch(mnist.as_tf_dataset("train", batch_size=BATCH)), mnist.size("train"))[0]
    )
    ratio = pipeline / step_rate
    benchmark.extra_info.update(
        train_step_examples_per_s=round(step_rate),
        fit_with_pipeline_examples_per_s=round(real_rate),
        pipeline_examples_per_s=round(pipeline),
        tfrecord_examples_per_s=round(RESULTS["tfrecord"]) if "tfrecord" in RESULTS else None,
        pipeline_to_step_ratio=round(ratio, 1),
    )
    rows = [
        ["in-memory pipeline (cache, shuffle, batch, prefetch)", round(pipeline)],
        ["TFRecord shards (interleave, parse)", round(RESULTS["tfrecord"]) if "tfrecord" in RESULTS else None],
        ["cnn training step, fixed batch", round(step_rate)],
        ["cnn fit through the real pipeline", round(real_rate)],
    ]
    print()
    print(format_table(rows, ["mnist, batch 32", "examples/s"]))
    print(
        f"pipeline / training step = {ratio:.1f}x; fit through the pipeline runs at "
        f"{real_rate / step_rate:.0%} of the fixed-batch step rate"
    )
    assert ratio > 1.0, "the input pipeline is slower than the training step: training is input-bound"
