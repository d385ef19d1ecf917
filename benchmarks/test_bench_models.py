"""Latency of the built-in models across runtimes and formats (pytest-benchmark).

Run the whole comparison with ``.venv/bin/python benchmarks/run.py`` (both
thread counts, results JSON and markdown table of ratios). This file alone:

    EDGE_BENCH_THREADS=1 .venv/bin/pytest benchmarks/test_bench_models.py --benchmark-only

For each of the mnist CNN and Wide & Deep, at batch 1 and 32, it times one call of:
  tf-savedmodel        the float SavedModel's serving_default signature in TensorFlow (numpy in, .numpy() out)
  tflite-float32       float32 TFLite through edge_sdk.Model (inputs as stored, raw outputs)
  tflite-int8          full-int8 TFLite (inputs already quantized)
  tflite-pruned-int8   80%-sparse pruned model, full int8
  onnxruntime-float32  onnxruntime on the tf2onnx export of the float model
All inputs are real test rows; every call takes numpy arrays and returns numpy
arrays. Each runtime gets EDGE_BENCH_THREADS intra-op threads.
"""

import numpy as np
import pytest
import suite_models
from suite_models import bench_threads

MODELS = list(suite_models.SUITE)
VARIANTS = list(suite_models.VARIANTS)
BATCHES = (1, 32)

_runners = {}


def _tflite_runner(path, inputs, batch, threads):
    import edge_sdk
    from edge_sdk.bench import to_storage_dtype

    model = edge_sdk.load(path, num_threads=threads)
    feed = [to_storage_dtype(inputs[spec.name][:batch], spec) for spec in model.inputs]
    model.predict_all(feed, raw=True)  # resize and allocate for this batch before timing
    return lambda: model.predict_all(feed, raw=True)


def _tf_runner(path, inputs, batch, threads):
    import tensorflow as tf

    if not _runners.get("tf-threads-set"):
        # Must happen before TensorFlow's runtime starts; run.py uses one process per thread count.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        _runners["tf-threads-set"] = True
    loaded = tf.saved_model.load(str(path))
    serving = loaded.signatures["serving_default"]
    feed = {name: value[:batch] for name, value in inputs.items()}

    def call():
        # numpy in, numpy out: what an app gets from the other runtimes too
        return {name: tensor.numpy() for name, tensor in serving(**feed).items()}

    call()
    _runners.setdefault("keepalive", []).append(loaded)  # the signature needs its SavedModel alive
    return call


def _ort_runner(path, inputs, batch, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {}
    for spec in session.get_inputs():
        name = spec.name.split(":")[0]
        feed[spec.name] = inputs[name][:batch]
    session.run(None, feed)
    return lambda: session.run(None, feed)


_FACTORIES = {"tf-savedmodel": _tf_runner, "onnxruntime-float32": _ort_runner}


def runner(suite_dirs, model, variant, batch):
    key = (model, variant, batch)
    if key not in _runners:
        path = suite_dirs[model] / suite_models.VARIANTS[variant]
        inputs = suite_models.load_inputs(model)
        factory = _FACTORIES.get(variant, _tflite_runner)
        _runners[key] = factory(path, inputs, batch, bench_threads())
    return _runners[key]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_latency(benchmark, suite_dirs, model, variant, batch):
    call = runner(suite_dirs, model, variant, batch)
    threads = bench_threads()
    manifest = suite_models.manifest(model, variant)
    benchmark.group = f"{model} batch {batch} threads {threads}"
    benchmark.extra_info.update(
        {
            "model": model,
            "variant": variant,
            "batch": batch,
            "threads": threads,
            "size_bytes": manifest.get("size_bytes"),
            "gzip_size_bytes": manifest.get("gzip_size_bytes"),
            "accuracy": (manifest.get("metrics") or {}).get("accuracy"),
        }
    )
    result = benchmark(call)
    assert result is not None
    outputs = (
        result if isinstance(result, (list, tuple)) else list(result.values()) if isinstance(result, dict) else [result]
    )
    first = np.asarray(outputs[0])
    assert first.shape[0] == batch  # the call really ran the whole batch
