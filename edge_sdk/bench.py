"""The latency benchmark engine behind ``edge-sdk bench``; needs only numpy and the LiteRT runtime.

    from edge_sdk import bench
    doc = bench.run_benchmark(["float.tflite", "int8.tflite"], bench.BenchOptions(runs=200, threads=(1, 2)))
    print(bench_results.format_results(doc))

The results document (its schema, checks, reading, the table and ``bench compare``) lives in
:mod:`edge_sdk.bench_results`.

What is timed: one ``Model.predict_all(inputs, raw=True)`` call through the
edge-sdk runtime, with inputs already in each input's storage dtype (float data
for an int8 input is quantized once, before timing). That is set-tensor, invoke
and read-outputs, the cost an app pays per call; the float<->int8 conversion
cost is measured separately in ``benchmarks/test_bench_runtime.py``.

Several models run interleaved: every round times a short block of calls on
each model in turn, so thermal drift or a noisy neighbour hits all of them
alike, and ratios against the first model are fair. Thread counts, batch sizes
and accelerators (the interpreter or LiteRT's CompiledModel) can be swept;
:func:`recommend` then names, per model, the thread count and batch with the
lowest latency and with the highest throughput, and every case where more
threads were slower.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.arrays import match_inputs, read_array_file
from edge_sdk.bench_results import BLOCK, RESULTS_FORMAT, TIMED_CALL
from edge_sdk.console import first_line, progress_bar
from edge_sdk.errors import BenchOptionError, EdgeSdkError, InputError
from edge_sdk.limits import check_thread_count

#: Without --runs or --duration: at least this many timed runs AND this many seconds per model. A fixed
#: 100 runs of a 12 us model spans about a millisecond, which one scheduler hiccup on a busy machine
#: can move by 3x; a second of runs cannot be moved that way.
DEFAULT_MIN_RUNS = 100
DEFAULT_DURATION = 1.0
#: With --duration, still at least this many runs per model (one slow model must not end with 1 sample).
MIN_RUNS_WITH_DURATION = 10
DEFAULT_WARMUP = 10
#: Distinct input batches cycled through, so the timings do not rest on one lucky input.
INPUT_VARIANTS = 8

PROFILING_UNAVAILABLE = (
    "per-operator profiling is not exposed by the {backend} Python API (its Interpreter has no profiler "
    "hook), so no per-operator times are reported; for a per-operator breakdown run TensorFlow's native "
    "benchmark_model binary with --enable_op_profiling=true"
)


@dataclass
class BenchOptions:
    """How to benchmark: warm-up, runs or duration, thread counts, batch, inputs, backend."""

    warmup: int = DEFAULT_WARMUP
    runs: int | None = None
    duration: float | None = None
    threads: tuple[int, ...] = (1,)
    batch: int | None = None
    input_path: str | None = None
    backend: str | None = None
    #: Several batch sizes to sweep (overrides ``batch``); each model runs at each.
    batches: tuple[int, ...] = ()
    #: ``None`` = the interpreter; else a CompiledModel accelerator (``"cpu"``, ``"gpu+cpu"``, ...).
    accelerators: tuple[str | None, ...] = (None,)
    seed: int = 0
    verify: bool = True
    keep_samples: bool = True
    progress: bool = True

    def validate(self) -> None:
        """Raise :class:`BenchOptionError` naming the first impossible option."""
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise BenchOptionError(f"warm-up runs must be an integer >= 0, got {self.warmup!r}")
        if self.runs is not None and self.duration is not None:
            raise BenchOptionError("give either a number of runs or a duration, not both")
        if self.runs is not None and (isinstance(self.runs, bool) or not isinstance(self.runs, int) or self.runs < 1):
            raise BenchOptionError(f"runs must be an integer >= 1, got {self.runs!r}")
        if self.duration is not None:
            if not isinstance(self.duration, (int, float)) or not math.isfinite(self.duration) or self.duration <= 0:
                raise BenchOptionError(f"duration must be a positive number of seconds, got {self.duration!r}")
        if not self.threads:
            raise BenchOptionError("threads must list at least one thread count, got none")
        for count in self.threads:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise BenchOptionError(f"thread counts must be integers >= 1, got {count!r} in {list(self.threads)}")
            check_thread_count(count, "a thread count", BenchOptionError)
        for batch in (self.batch, *self.batches):
            if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
                raise BenchOptionError(f"batch must be an integer >= 1, got {batch!r}")
        if not self.accelerators:
            raise BenchOptionError("accelerators must list at least one choice (None for the interpreter)")
        for accelerator in self.accelerators:
            if accelerator is not None:
                from edge_sdk.backends import parse_accelerator
                from edge_sdk.errors import BackendUnavailableError

                try:
                    parse_accelerator(accelerator)
                except BackendUnavailableError as exc:
                    raise BenchOptionError(str(exc)) from None

    @property
    def batch_sizes(self) -> tuple[int | None, ...]:
        """The batch sizes to run (``None``: each model's own, 1 where dynamic)."""
        return tuple(self.batches) if self.batches else (self.batch,)

    @property
    def planned_runs(self) -> int | None:
        """Exact timed runs per model and thread count, or ``None`` when a duration governs."""
        return self.runs

    @property
    def effective_duration(self) -> float | None:
        """Seconds of timed runs per model and thread count (``None`` with a fixed number of runs)."""
        if self.runs is not None:
            return None
        return self.duration if self.duration is not None else DEFAULT_DURATION

    @property
    def min_runs(self) -> int:
        """Timed runs every model gets at least, whatever the duration."""
        if self.runs is not None:
            return self.runs
        return MIN_RUNS_WITH_DURATION if self.duration is not None else DEFAULT_MIN_RUNS


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``; raise :class:`BenchOptionError` on anything else."""
    sizes = []
    for part in str(text).split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise BenchOptionError(
                f"--batch expects comma-separated positive integers such as 1,8,32; got {text!r}"
            ) from None
        if value < 1:
            raise BenchOptionError(f"batch must be an integer >= 1, got {value}")
        sizes.append(value)
    return tuple(dict.fromkeys(sizes))


def parse_accelerators(text: str) -> tuple[str | None, ...]:
    """``"interpreter,cpu"`` -> ``(None, "cpu")``: what ``--accelerator`` compares."""
    choices: list[str | None] = []
    for part in str(text).split(","):
        part = part.strip().lower()
        choices.append(None if part in ("interpreter", "none", "") else part)
    options = BenchOptions(accelerators=tuple(dict.fromkeys(choices)))
    options.validate()
    return options.accelerators


def parse_threads(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``; raise :class:`BenchOptionError` on anything else."""
    counts = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise BenchOptionError(
                f"--threads expects comma-separated positive integers such as 1,2,4; got {text!r}"
            ) from None
        if value < 1:
            raise BenchOptionError(f"--threads expects thread counts >= 1; got {value} in {text!r}")
        check_thread_count(value, "--threads", BenchOptionError)
        counts.append(value)
    return tuple(dict.fromkeys(counts))


# -- memory --------------------------------------------------------------------------------------


def rss_mb() -> tuple[float | None, float | None]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status or ``resource``."""
    current = peak = None
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024.0
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    if peak is None:
        try:
            import resource
            import sys

            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0
        except (ImportError, OSError):
            pass
    return current, peak


# -- statistics ----------------------------------------------------------------------------------


def latency_stats(samples_ns: Sequence[int]) -> dict[str, float]:
    """Mean, median, p90, p99, min, max and standard deviation, in microseconds."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    if us.size == 0:
        raise ValueError("no samples")
    return {
        "mean": float(us.mean()),
        "median": float(np.median(us)),
        "p90": float(np.percentile(us, 90)),
        "p99": float(np.percentile(us, 99)),
        "min": float(us.min()),
        "max": float(us.max()),
        "std": float(us.std(ddof=1)) if us.size > 1 else 0.0,
    }


# -- inputs --------------------------------------------------------------------------------------


def _random_values(
    spec: Any,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    calibration: Mapping[str, Any] | None,
    preprocessing: Mapping[str, Any] | None,
) -> tuple[np.ndarray, str]:
    """Random data in ``spec``'s valid range, in its storage dtype, and a note saying which range."""
    dtype = np.dtype(spec.dtype)
    stats = (calibration or {}).get(spec.name) if isinstance(calibration, Mapping) else None
    low = high = None
    note = ""
    if isinstance(stats, Mapping) and stats.get("min") is not None and stats.get("max") is not None:
        low, high = float(stats["min"]), float(stats["max"])
        note = f"uniform in the manifest's calibration range [{low:.4g}, {high:.4g}]"
    elif dtype.kind == "f" and isinstance(preprocessing, Mapping) and "scale" in preprocessing:
        scale, offset = float(preprocessing["scale"]), float(preprocessing.get("offset", 0.0))
        low, high = sorted((offset, 255.0 * scale + offset))
        note = f"uniform in the manifest's preprocessed pixel range [{low:.4g}, {high:.4g}]"
    if spec.quantization is not None and dtype.kind in "iu":
        from edge_sdk import quant

        info = np.iinfo(dtype)
        if low is None or high is None:
            return rng.integers(
                info.min, int(info.max) + 1, size=shape, dtype=dtype
            ), f"uniform over {dtype.name}'s range (quantized input)"
        q = spec.quantization
        real = rng.uniform(low, high, size=shape).astype(np.float32)
        return quant.quantize(real, q.scale, q.zero_point, dtype, getattr(q, "axis", None), name=spec.name), note
    if dtype.kind == "f":
        if low is None or high is None:
            low, high = 0.0, 1.0
            note = "uniform in [0, 1] (no calibration range or preprocessing in a manifest)"
        return rng.uniform(low, high, size=shape).astype(dtype), note
    if dtype.kind in "iu":
        if low is not None and high is not None:
            return rng.integers(int(math.floor(low)), int(math.floor(high)) + 1, size=shape).astype(dtype), note
        # An integer input that is not quantized is usually an index (a category id); 0 is always valid.
        return np.zeros(shape, dtype=dtype), "zeros (integer index input with no calibration range in a manifest)"
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool), "random booleans"
    raise BenchOptionError(
        f"input {spec.name!r} has dtype {dtype.name}; random data of that dtype is not "
        "supported, give real data with --input"
    )


def to_storage_dtype(arr: np.ndarray, spec: Any) -> np.ndarray:
    """Convert user data to the input's storage dtype once, so timing excludes conversion."""
    dtype = np.dtype(spec.dtype)
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if spec.quantization is not None and dtype.kind in "iu" and arr.dtype.kind == "f":
        from edge_sdk import quant

        q = spec.quantization
        return quant.quantize(arr, q.scale, q.zero_point, dtype, getattr(q, "axis", None), name=spec.name)
    if dtype.kind == "f" and arr.dtype.kind in "fiu":  # bool data: the Model refuses it, naming the rule
        return np.ascontiguousarray(arr.astype(dtype))
    if dtype.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
        info = np.iinfo(dtype)
        if info.min <= arr.min() and arr.max() <= info.max:  # e.g. int64 category ids for an int32 input
            return np.ascontiguousarray(arr.astype(dtype))
    return arr  # the Model checks and converts (or rejects with a clear error) on the first call


def resolve_batch(specs: Sequence[Any], requested: int | None, label: str) -> int:
    """The batch to run: ``requested`` where the model's batch dimension allows it, else a clear error."""
    fixed = {s.shape[0] for s in specs if len(s.shape) > 0 and s.shape[0] is not None}
    dynamic = any(len(s.shape) > 0 and s.shape[0] is None for s in specs)
    if requested is None:
        return next(iter(fixed)) if fixed and not dynamic else 1
    if fixed and requested not in fixed:
        shapes = ", ".join(f"{s.name} {list(('?' if d is None else d) for d in s.shape)}" for s in specs)
        raise BenchOptionError(
            f"{label}: --batch {requested} is impossible; the model fixes its batch dimension ({shapes}). "
            f"Drop --batch, or convert the model with a dynamic batch dimension"
        )
    return requested


def build_feeds(
    model: Any, batch: int, data: Mapping[str, np.ndarray] | None, source: str, seed: int
) -> tuple[list[list[np.ndarray]], str]:
    """The input batches to cycle through (each a list in input order) and a note on where they came from."""
    specs = model.inputs
    if data is not None:
        arrays = match_inputs(data, specs, source)
        rows = {a.shape[0] if a.ndim else 1 for a in arrays}
        if len(rows) != 1:
            raise InputError(
                f"{source}: the arrays have different numbers of rows {sorted(rows)}; "
                "expected the same number of rows for every input"
            )
        n = rows.pop()
        if n < batch:
            raise InputError(f"{source} has {n} row(s); batch {batch} needs at least {batch}")
        arrays = [to_storage_dtype(a, s) for a, s in zip(arrays, specs, strict=False)]
        count = max(1, min(INPUT_VARIANTS * 4, n // batch))
        feeds = [[a[i * batch : (i + 1) * batch] for a in arrays] for i in range(count)]
        return feeds, f"{source}: {count} batch(es) of {batch} real row(s), cycled"
    rng = np.random.default_rng(seed)
    manifest = getattr(model, "manifest", None) or {}
    feeds = []
    notes: dict[str, str] = {}
    for _ in range(INPUT_VARIANTS):
        feed = []
        for spec in specs:
            dims = list(spec.shape)
            if dims and dims[0] is None:
                dims[0] = batch
            if any(d is None for d in dims):
                raise BenchOptionError(
                    f"input {spec.name!r} has dynamic dimensions {spec.shape} beyond the batch; random data "
                    "cannot guess their size, give real data with --input"
                )
            values, note = _random_values(
                spec, tuple(dims), rng, manifest.get("calibration"), manifest.get("preprocessing")
            )
            notes[spec.name] = note
            feed.append(values)
        feeds.append(feed)
    return feeds, "random: " + "; ".join(f"{k}: {v}" for k, v in notes.items())


# -- running -------------------------------------------------------------------------------------


@dataclass
class _Subject:
    """One model at one thread count while the benchmark runs."""

    label: str
    path: str
    threads: int
    accelerator: str | None = None
    batch: int | None = None
    model_label: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    feeds: list[list[np.ndarray]] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    cursor: int = 0
    failed: bool = False

    def fail(self, exc: BaseException, stage: str) -> None:
        self.failed = True
        self.model = None
        self.feeds = []
        self.result["status"] = "failed"
        self.result["error"] = f"{stage}: {_describe_error(exc)}"


def _describe_error(exc: BaseException) -> str:
    text = first_line(exc)  # the type name when the message is empty
    if isinstance(exc, EdgeSdkError) or text == type(exc).__name__:
        return text
    return f"{type(exc).__name__}: {text}"


def model_labels(paths: Sequence[str]) -> list[str]:
    """Short unique labels: file names, or parent/name where names collide."""
    names = [Path(p).name for p in paths]
    labels = []
    for path, name in zip(paths, names, strict=False):
        if names.count(name) > 1 and Path(path).parent.name:
            name = f"{Path(path).parent.name}/{name}"
        labels.append(name)
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def _prepare(subject: _Subject, options: BenchOptions, data: Mapping[str, np.ndarray] | None) -> None:
    import edge_sdk

    res = subject.result
    res.update(
        {
            "label": subject.label,
            "model": subject.model_label or subject.label,
            "path": subject.path,
            "threads": subject.threads,
            "accelerator": subject.accelerator or "interpreter",
            "status": "ok",
            "error": None,
        }
    )
    try:
        res["file_size_bytes"] = os.path.getsize(subject.path)
    except OSError:
        res["file_size_bytes"] = None
    gc.collect()
    rss_before, _ = rss_mb()
    try:
        t0 = time.perf_counter_ns()
        model = edge_sdk.load(
            subject.path,
            backend=options.backend,
            num_threads=subject.threads,
            verify=options.verify,
            accelerator=subject.accelerator,
        )
        res["load_ms"] = (time.perf_counter_ns() - t0) / 1e6
    except Exception as exc:  # noqa: BLE001 - any load failure marks this model failed; the others run on
        subject.fail(exc, "load")
        return
    res["backend"] = {"name": model.backend, "version": getattr(model, "backend_version", None)}
    res["kind"] = (model.manifest or {}).get("kind") if getattr(model, "manifest", None) else None
    res["inputs"] = [s.to_dict() for s in model.inputs]
    stage = "options"
    try:
        batch = resolve_batch(model.inputs, subject.batch, subject.label)
        res["batch"] = batch
        stage = "inputs"
        feeds, note = build_feeds(model, batch, data, str(options.input_path), options.seed)
        res["input_source"] = note
        stage = "first inference"
        t0 = time.perf_counter_ns()
        model.predict_all(feeds[0], raw=True)
        res["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6
        for i in range(options.warmup):
            model.predict_all(feeds[(i + 1) % len(feeds)], raw=True)
    except Exception as exc:  # noqa: BLE001 - reported as this model's failure; the others run on
        subject.fail(exc, stage)
        return
    rss_after, _ = rss_mb()
    res["warmup_runs"] = options.warmup
    res["rss_before_mb"] = rss_before
    res["rss_after_mb"] = rss_after
    res["rss_added_mb"] = (rss_after - rss_before) if rss_before is not None and rss_after is not None else None
    subject.model = model
    subject.feeds = feeds


def _timed_block(subject: _Subject, count: int) -> int:
    """Time ``count`` calls on ``subject``; return the nanoseconds spent in timed calls."""
    model = subject.model
    feeds = subject.feeds
    n_feeds = len(feeds)
    predict = model.predict_all
    samples = subject.samples
    clock = time.perf_counter_ns
    spent = 0
    cursor = subject.cursor
    for _ in range(count):
        feed = feeds[cursor % n_feeds]
        cursor += 1
        t0 = clock()
        predict(feed, raw=True)
        elapsed = clock() - t0
        samples.append(elapsed)
        spent += elapsed
    subject.cursor = cursor
    return spent


def _run_interleaved(subjects: list[_Subject], options: BenchOptions, bar: Callable[[int], None] | None) -> None:
    live = [s for s in subjects if not s.failed]
    planned = options.planned_runs
    duration = options.effective_duration
    deadline = None if planned is not None or duration is None else time.perf_counter() + duration * max(1, len(live))
    min_runs = options.min_runs
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed call would be charged to whichever model was running
    try:
        while live:
            for subject in list(live):
                count = BLOCK if planned is None else min(BLOCK, planned - len(subject.samples))
                try:
                    _timed_block(subject, count)
                except Exception as exc:  # noqa: BLE001 - a failing run is recorded on its subject and reported, not raised
                    subject.fail(exc, f"run {len(subject.samples) + 1}")
                    live.remove(subject)
                    continue
                if bar:
                    bar(count)
            if planned is not None:
                live = [s for s in live if len(s.samples) < planned]
            elif (
                deadline is not None
                and time.perf_counter() >= deadline
                and all(len(s.samples) >= min_runs for s in live)
            ):
                break
    finally:
        if gc_was_enabled:
            gc.enable()


def _finish(subject: _Subject, options: BenchOptions) -> None:
    res = subject.result
    if subject.failed or not subject.samples:
        if not subject.failed:
            res["status"] = "failed"
            res["error"] = "no timed runs completed"
        return
    stats = latency_stats(subject.samples)
    res["runs"] = len(subject.samples)
    res["latency_us"] = stats
    batch = res.get("batch", 1)
    res["throughput"] = {
        "inferences_per_s": 1e6 / stats["mean"] if stats["mean"] > 0 else None,
        "samples_per_s": batch * 1e6 / stats["mean"] if stats["mean"] > 0 else None,
    }
    _, peak = rss_mb()
    res["process_peak_rss_mb"] = peak
    if options.keep_samples:
        res["samples_us"] = [round(ns / 1000.0, 3) for ns in subject.samples]


def _subject_label(label: str, accelerator: str | None, batch: int | None, options: BenchOptions) -> str:
    """The model's label, plus the accelerator when several are compared (batch has its own column)."""
    if len(options.accelerators) > 1 or accelerator is not None:
        return f"{label} [{accelerator or 'interpreter'}]"
    return label


def add_ratios(results: list[dict[str, Any]], first_label: str) -> None:
    by_threads: dict[tuple[int, Any], float | None] = {}
    for res in results:
        if res["label"] == first_label:
            by_threads[(res["threads"], res.get("batch"))] = (
                res.get("latency_us", {}).get("median") if res["status"] == "ok" else None
            )
    for res in results:
        base = by_threads.get((res["threads"], res.get("batch")))
        median = res.get("latency_us", {}).get("median") if res["status"] == "ok" else None
        res["ratio_vs_first"] = (median / base) if base and median is not None else None


#: A higher thread count is reported as slower when its median is more than this factor above a lower count's.
SLOWER_MARGIN = 1.05


def recommend(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model (and accelerator): the thread count and batch with the lowest latency per call and with
    the highest throughput (items per second at the median), and every case where more threads were slower.

    Medians, not means: on a shared machine a mean carries other processes' work.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for res in results:
        median = (res.get("latency_us") or {}).get("median")
        if res.get("status") == "ok" and isinstance(median, (int, float)) and median > 0:
            groups.setdefault(str(res.get("label")), []).append(res)
    out = []
    for label, rows in groups.items():

        def median(r: Mapping[str, Any]) -> float:
            return float(r["latency_us"]["median"])

        def items_per_s(r: Mapping[str, Any]) -> float:
            return float((r.get("batch") or 1) * 1e6 / median(r))

        fastest = min(rows, key=lambda r: (median(r), r["threads"]))
        busiest = max(rows, key=lambda r: (items_per_s(r), -r["threads"]))
        slower: list[dict[str, Any]] = []
        for batch in sorted({r.get("batch") or 1 for r in rows}):
            ordered = sorted((r for r in rows if (r.get("batch") or 1) == batch), key=lambda r: r["threads"])
            for low, high in zip(ordered, ordered[1:], strict=False):
                ratio = median(high) / median(low)
                if ratio > SLOWER_MARGIN:
                    slower.append(
                        {
                            "batch": batch,
                            "threads": [low["threads"], high["threads"]],
                            "median_us": [median(low), median(high)],
                            "ratio": ratio,
                        }
                    )
        text = [
            f"{label}: lowest latency per call with {_threads(fastest['threads'])} at batch "
            f"{fastest.get('batch') or 1} ({median(fastest):.1f} us median); highest throughput with "
            f"{_threads(busiest['threads'])} at batch {busiest.get('batch') or 1} "
            f"({items_per_s(busiest):,.0f} items/s at the median)"
        ]
        for case in slower:
            (t_low, t_high), (m_low, m_high) = case["threads"], case["median_us"]
            text.append(
                f"{label}: SLOWER with more threads at batch {case['batch']}: {_threads(t_high)} "
                f"{m_high:.1f} us against {_threads(t_low)} {m_low:.1f} us ({case['ratio']:.2f}x); "
                f"use {_threads(t_low)} for it"
            )
        if len({r["threads"] for r in rows}) == 1 and len({r.get("batch") for r in rows}) == 1:
            text.append(
                f"{label}: only one thread count and batch measured; sweep --threads 1,2,4 and "
                "--batch 1,8,32 to compare"
            )
        out.append(
            {
                "model": label,
                "lowest_latency": {
                    "threads": fastest["threads"],
                    "batch": fastest.get("batch") or 1,
                    "median_us": median(fastest),
                },
                "highest_throughput": {
                    "threads": busiest["threads"],
                    "batch": busiest.get("batch") or 1,
                    "items_per_s": items_per_s(busiest),
                },
                "more_threads_slower": slower,
                "text": text,
            }
        )
    return out


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def run_benchmark(model_paths: Sequence[str | os.PathLike[str]], options: BenchOptions | None = None) -> dict[str, Any]:
    """Benchmark each model at each thread count, interleaved; return the results document.

    A model that fails to load or run is recorded with ``status: failed`` and
    its error; the others still run. Raises :class:`BenchOptionError` only for
    options that no model could satisfy (0 runs, thread count 0, ...).
    """
    from edge_sdk import sysinfo

    options = options or BenchOptions()
    options.validate()
    if not model_paths:
        raise BenchOptionError("give at least one model to benchmark")
    paths = [str(p) for p in model_paths]
    labels = model_labels(paths)
    data = read_array_file(options.input_path) if options.input_path else None
    started = time.time()
    results: list[dict[str, Any]] = []
    planned = options.planned_runs
    total = (
        None
        if planned is None
        else planned * len(paths) * len(options.threads) * len(options.accelerators) * len(options.batch_sizes)
    )
    # Import the interpreter library before any timing, so the first model's load time is not charged
    # with it; an unknown or missing backend still fails per model below, with its own message.
    try:
        from edge_sdk.backends import get_backend

        get_backend(options.backend)
    except EdgeSdkError:
        pass
    bar, close = _progress(total, options.progress)
    try:
        for threads in options.threads:
            subjects = [
                _Subject(_subject_label(label, accelerator, batch, options), path, threads, accelerator, batch, label)
                for label, path in zip(labels, paths, strict=False)
                for accelerator in options.accelerators
                for batch in options.batch_sizes
            ]
            for subject in subjects:
                _prepare(subject, options, data)
            _run_interleaved(subjects, options, bar)
            for subject in subjects:
                _finish(subject, options)
                results.append(subject.result)
            del subjects
            gc.collect()
    finally:
        close()
    add_ratios(results, results[0]["label"] if results else labels[0])
    backend_name = next((r["backend"]["name"] for r in results if r.get("backend")), options.backend or "litert")
    _, peak = rss_mb()
    opts = asdict(options)
    opts.pop("progress", None)
    opts["threads"] = list(options.threads)
    opts["runs"] = planned
    opts["duration"] = options.effective_duration
    opts["min_runs"] = options.min_runs
    opts["block"] = BLOCK
    opts["timed_call"] = TIMED_CALL
    opts["accelerators"] = [a or "interpreter" for a in options.accelerators]
    opts["batches"] = list(options.batches)
    return {
        "format": RESULTS_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_time_s": time.time() - started,
        "device": sysinfo.describe(options.backend),
        "options": opts,
        "models": [{"label": label, "path": path} for label, path in zip(labels, paths, strict=False)],
        "results": results,
        "process_peak_rss_mb": peak,
        "profiling": {"available": False, "reason": PROFILING_UNAVAILABLE.format(backend=backend_name)},
        "recommendations": recommend(results),
    }


def _progress(total: int | None, enabled: bool) -> tuple[Callable[..., Any] | None, Callable[[], Any]]:
    bar = progress_bar(total, "bench", unit="run") if enabled else None
    if bar is None:
        return None, lambda: None
    return bar.update, bar.close
