"""The latency benchmark engine behind ``edge-sdk bench``; needs only numpy and the LiteRT runtime.

    from edge_sdk import bench
    doc = bench.run_benchmark(["float.tflite", "int8.tflite"], bench.BenchOptions(runs=200, threads=(1, 2)))
    print(bench.format_results(doc))

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edge_sdk.arrays import match_inputs, read_array_file
from edge_sdk.console import clean_text, first_line, progress_bar
from edge_sdk.errors import EdgeSdkError, InputError
from edge_sdk.limits import check_thread_count

RESULTS_FORMAT = "edge-sdk-bench/1"
#: Without --runs or --duration: at least this many timed runs AND this many seconds per model. A fixed
#: 100 runs of a 12 us model spans about a millisecond, which one scheduler hiccup on a busy machine
#: can move by 3x; a second of runs cannot be moved that way.
DEFAULT_MIN_RUNS = 100
DEFAULT_DURATION = 1.0
#: With --duration, still at least this many runs per model (one slow model must not end with 1 sample).
MIN_RUNS_WITH_DURATION = 10
DEFAULT_WARMUP = 10
#: Timed calls per model per interleaving round: long enough to keep caches warm, short enough to interleave.
BLOCK = 10
#: Distinct input batches cycled through, so the timings do not rest on one lucky input.
INPUT_VARIANTS = 8
TIMED_CALL = "Model.predict_all(inputs in storage dtype, raw=True)"

PROFILING_UNAVAILABLE = (
    "per-operator profiling is not exposed by the {backend} Python API (its Interpreter has no profiler "
    "hook), so no per-operator times are reported; for a per-operator breakdown run TensorFlow's native "
    "benchmark_model binary with --enable_op_profiling=true"
)


class BenchOptionError(EdgeSdkError, ValueError):
    """Benchmark options that cannot work (0 runs, negative threads, a batch a model cannot take)."""


class BenchFormatError(EdgeSdkError, ValueError):
    """A results file that is not a readable edge-sdk bench results file."""


@dataclass
class BenchOptions:
    """How to benchmark: warm-up, runs or duration, thread counts, batch, inputs, backend."""

    warmup: int = DEFAULT_WARMUP
    runs: Optional[int] = None
    duration: Optional[float] = None
    threads: Tuple[int, ...] = (1,)
    batch: Optional[int] = None
    input_path: Optional[str] = None
    backend: Optional[str] = None
    #: Several batch sizes to sweep (overrides ``batch``); each model runs at each.
    batches: Tuple[int, ...] = ()
    #: ``None`` = the interpreter; else a CompiledModel accelerator (``"cpu"``, ``"gpu+cpu"``, ...).
    accelerators: Tuple[Optional[str], ...] = (None,)
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
    def batch_sizes(self) -> Tuple[Optional[int], ...]:
        """The batch sizes to run (``None``: each model's own, 1 where dynamic)."""
        return tuple(self.batches) if self.batches else (self.batch,)

    @property
    def planned_runs(self) -> Optional[int]:
        """Exact timed runs per model and thread count, or ``None`` when a duration governs."""
        return self.runs

    @property
    def effective_duration(self) -> Optional[float]:
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


def parse_batches(text: str) -> Tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``; raise :class:`BenchOptionError` on anything else."""
    sizes = []
    for part in str(text).split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise BenchOptionError(f"--batch expects comma-separated positive integers such as 1,8,32; got {text!r}") from None
        if value < 1:
            raise BenchOptionError(f"batch must be an integer >= 1, got {value}")
        sizes.append(value)
    return tuple(dict.fromkeys(sizes))


def parse_accelerators(text: str) -> Tuple[Optional[str], ...]:
    """``"interpreter,cpu"`` -> ``(None, "cpu")``: what ``--accelerator`` compares."""
    choices: List[Optional[str]] = []
    for part in str(text).split(","):
        part = part.strip().lower()
        choices.append(None if part in ("interpreter", "none", "") else part)
    options = BenchOptions(accelerators=tuple(dict.fromkeys(choices)))
    options.validate()
    return options.accelerators


def parse_threads(text: str) -> Tuple[int, ...]:
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

def rss_mb() -> Tuple[Optional[float], Optional[float]]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status or ``resource``."""
    current = peak = None
    try:
        with open("/proc/self/status", "r", encoding="ascii", errors="replace") as handle:
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

def latency_stats(samples_ns: Sequence[int]) -> Dict[str, float]:
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

def _random_values(spec: Any, shape: Tuple[int, ...], rng: np.random.Generator,
                   calibration: Optional[Mapping[str, Any]], preprocessing: Optional[Mapping[str, Any]]) -> Tuple[np.ndarray, str]:
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
        if low is None:
            return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype), \
                f"uniform over {dtype.name}'s range (quantized input)"
        q = spec.quantization
        real = rng.uniform(low, high, size=shape).astype(np.float32)
        return quant.quantize(real, q.scale, q.zero_point, dtype, getattr(q, "axis", None), name=spec.name), note
    if dtype.kind == "f":
        if low is None:
            low, high = 0.0, 1.0
            note = "uniform in [0, 1] (no calibration range or preprocessing in a manifest)"
        return rng.uniform(low, high, size=shape).astype(dtype), note
    if dtype.kind in "iu":
        if low is not None:
            return rng.integers(int(math.floor(low)), int(math.floor(high)) + 1, size=shape).astype(dtype), note
        # An integer input that is not quantized is usually an index (a category id); 0 is always valid.
        return np.zeros(shape, dtype=dtype), "zeros (integer index input with no calibration range in a manifest)"
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool), "random booleans"
    raise BenchOptionError(f"input {spec.name!r} has dtype {dtype.name}; random data of that dtype is not "
                           "supported, give real data with --input")


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


def resolve_batch(specs: Sequence[Any], requested: Optional[int], label: str) -> int:
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


def build_feeds(model: Any, batch: int, data: Optional[Mapping[str, np.ndarray]], source: str,
                seed: int) -> Tuple[List[List[np.ndarray]], str]:
    """The input batches to cycle through (each a list in input order) and a note on where they came from."""
    specs = model.inputs
    if data is not None:
        arrays = match_inputs(data, specs, source)
        rows = {a.shape[0] if a.ndim else 1 for a in arrays}
        if len(rows) != 1:
            raise InputError(f"{source}: the arrays have different numbers of rows {sorted(rows)}; "
                             "expected the same number of rows for every input")
        n = rows.pop()
        if n < batch:
            raise InputError(f"{source} has {n} row(s); batch {batch} needs at least {batch}")
        arrays = [to_storage_dtype(a, s) for a, s in zip(arrays, specs)]
        count = max(1, min(INPUT_VARIANTS * 4, n // batch))
        feeds = [[a[i * batch:(i + 1) * batch] for a in arrays] for i in range(count)]
        return feeds, f"{source}: {count} batch(es) of {batch} real row(s), cycled"
    rng = np.random.default_rng(seed)
    manifest = getattr(model, "manifest", None) or {}
    feeds: List[List[np.ndarray]] = []
    notes: Dict[str, str] = {}
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
            values, note = _random_values(spec, tuple(dims), rng, manifest.get("calibration"),
                                          manifest.get("preprocessing"))
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
    accelerator: Optional[str] = None
    batch: Optional[int] = None
    model_label: str = ""
    result: Dict[str, Any] = field(default_factory=dict)
    model: Any = None
    feeds: List[List[np.ndarray]] = field(default_factory=list)
    samples: List[int] = field(default_factory=list)
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


def model_labels(paths: Sequence[str]) -> List[str]:
    """Short unique labels: file names, or parent/name where names collide."""
    names = [Path(p).name for p in paths]
    labels = []
    for path, name in zip(paths, names):
        if names.count(name) > 1 and Path(path).parent.name:
            name = f"{Path(path).parent.name}/{name}"
        labels.append(name)
    seen: Dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def _prepare(subject: _Subject, options: BenchOptions, data: Optional[Mapping[str, np.ndarray]]) -> None:
    import edge_sdk

    res = subject.result
    res.update({"label": subject.label, "model": subject.model_label or subject.label, "path": subject.path,
                "threads": subject.threads, "accelerator": subject.accelerator or "interpreter",
                "status": "ok", "error": None})
    try:
        res["file_size_bytes"] = os.path.getsize(subject.path)
    except OSError:
        res["file_size_bytes"] = None
    gc.collect()
    rss_before, _ = rss_mb()
    try:
        t0 = time.perf_counter_ns()
        model = edge_sdk.load(subject.path, backend=options.backend, num_threads=subject.threads,
                              verify=options.verify, accelerator=subject.accelerator)
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


def _run_interleaved(subjects: List[_Subject], options: BenchOptions, bar: Optional[Callable[[int], None]]) -> None:
    live = [s for s in subjects if not s.failed]
    planned = options.planned_runs
    duration = options.effective_duration
    deadline = None if planned is not None else time.perf_counter() + duration * max(1, len(live))
    min_runs = options.min_runs
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed call would be charged to whichever model was running
    try:
        while live:
            for subject in list(live):
                count = BLOCK if planned is None else min(BLOCK, planned - len(subject.samples))
                try:
                    _timed_block(subject, count)
                except Exception as exc:  # noqa: BLE001
                    subject.fail(exc, f"run {len(subject.samples) + 1}")
                    live.remove(subject)
                    continue
                if bar:
                    bar(count)
            if planned is not None:
                live = [s for s in live if len(s.samples) < planned]
            elif time.perf_counter() >= deadline and all(len(s.samples) >= min_runs for s in live):
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


def _subject_label(label: str, accelerator: Optional[str], batch: Optional[int], options: BenchOptions) -> str:
    """The model's label, plus the accelerator when several are compared (batch has its own column)."""
    if len(options.accelerators) > 1 or accelerator is not None:
        return f"{label} [{accelerator or 'interpreter'}]"
    return label


def _add_ratios(results: List[Dict[str, Any]], first_label: str) -> None:
    by_threads: Dict[Tuple[int, Any], Optional[float]] = {}
    for res in results:
        if res["label"] == first_label:
            by_threads[(res["threads"], res.get("batch"))] = \
                res.get("latency_us", {}).get("median") if res["status"] == "ok" else None
    for res in results:
        base = by_threads.get((res["threads"], res.get("batch")))
        median = res.get("latency_us", {}).get("median") if res["status"] == "ok" else None
        res["ratio_vs_first"] = (median / base) if base and median is not None else None


#: A higher thread count is reported as slower when its median is more than this factor above a lower count's.
SLOWER_MARGIN = 1.05


def recommend(results: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Per model (and accelerator): the thread count and batch with the lowest latency per call and with
    the highest throughput (items per second at the median), and every case where more threads were slower.

    Medians, not means: on a shared machine a mean carries other processes' work.
    """
    groups: Dict[str, List[Mapping[str, Any]]] = {}
    for res in results:
        median = (res.get("latency_us") or {}).get("median")
        if res.get("status") == "ok" and isinstance(median, (int, float)) and median > 0:
            groups.setdefault(str(res.get("label")), []).append(res)
    out = []
    for label, rows in groups.items():
        def median(r):
            return float(r["latency_us"]["median"])

        def items_per_s(r):
            return (r.get("batch") or 1) * 1e6 / median(r)

        fastest = min(rows, key=lambda r: (median(r), r["threads"]))
        busiest = max(rows, key=lambda r: (items_per_s(r), -r["threads"]))
        slower = []
        for batch in sorted({r.get("batch") or 1 for r in rows}):
            ordered = sorted((r for r in rows if (r.get("batch") or 1) == batch), key=lambda r: r["threads"])
            for low, high in zip(ordered, ordered[1:]):
                ratio = median(high) / median(low)
                if ratio > SLOWER_MARGIN:
                    slower.append({"batch": batch, "threads": [low["threads"], high["threads"]],
                                   "median_us": [median(low), median(high)], "ratio": ratio})
        text = [f"{label}: lowest latency per call with {_threads(fastest['threads'])} at batch "
                f"{fastest.get('batch') or 1} ({median(fastest):.1f} us median); highest throughput with "
                f"{_threads(busiest['threads'])} at batch {busiest.get('batch') or 1} "
                f"({items_per_s(busiest):,.0f} items/s at the median)"]
        for case in slower:
            (t_low, t_high), (m_low, m_high) = case["threads"], case["median_us"]
            text.append(f"{label}: SLOWER with more threads at batch {case['batch']}: {_threads(t_high)} "
                        f"{m_high:.1f} us against {_threads(t_low)} {m_low:.1f} us ({case['ratio']:.2f}x); "
                        f"use {_threads(t_low)} for it")
        if len({r["threads"] for r in rows}) == 1 and len({r.get("batch") for r in rows}) == 1:
            text.append(f"{label}: only one thread count and batch measured; sweep --threads 1,2,4 and "
                        "--batch 1,8,32 to compare")
        out.append({
            "model": label,
            "lowest_latency": {"threads": fastest["threads"], "batch": fastest.get("batch") or 1,
                               "median_us": median(fastest)},
            "highest_throughput": {"threads": busiest["threads"], "batch": busiest.get("batch") or 1,
                                   "items_per_s": items_per_s(busiest)},
            "more_threads_slower": slower,
            "text": text,
        })
    return out


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def run_benchmark(model_paths: Sequence[Union[str, os.PathLike]], options: Optional[BenchOptions] = None) -> Dict[str, Any]:
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
    results: List[Dict[str, Any]] = []
    planned = options.planned_runs
    total = None if planned is None else \
        planned * len(paths) * len(options.threads) * len(options.accelerators) * len(options.batch_sizes)
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
            subjects = [_Subject(_subject_label(label, accelerator, batch, options), path, threads, accelerator,
                                 batch, label)
                        for label, path in zip(labels, paths)
                        for accelerator in options.accelerators for batch in options.batch_sizes]
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
    _add_ratios(results, results[0]["label"] if results else labels[0])
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
        "models": [{"label": label, "path": path} for label, path in zip(labels, paths)],
        "results": results,
        "process_peak_rss_mb": peak,
        "profiling": {"available": False, "reason": PROFILING_UNAVAILABLE.format(backend=backend_name)},
        "recommendations": recommend(results),
    }


def _progress(total: Optional[int], enabled: bool):
    bar = progress_bar(total, "bench", unit="run") if enabled else None
    if bar is None:
        return None, lambda: None
    return bar.update, bar.close


# -- reporting -----------------------------------------------------------------------------------

RESULT_HEADERS = ("model", "thr", "batch", "median us", "mean us", "p90 us", "p99 us", "min us", "max us",
                  "std us", "inf/s", "load ms", "first ms", "RSS+ MB", "size KB", "x first", "status")


def result_rows(doc: Mapping[str, Any]) -> List[List[Any]]:
    """Rows for :data:`RESULT_HEADERS`, one per model and thread count."""
    rows = []
    for res in doc.get("results", []):
        lat = res.get("latency_us") or {}
        size = res.get("file_size_bytes")
        ratio = res.get("ratio_vs_first")
        status = res.get("status", "?")
        if status != "ok":
            status = "FAILED (below)"
        rows.append([
            res.get("label"), res.get("threads"), res.get("batch"), lat.get("median"), lat.get("mean"),
            lat.get("p90"), lat.get("p99"), lat.get("min"), lat.get("max"), lat.get("std"),
            (res.get("throughput") or {}).get("inferences_per_s"), res.get("load_ms"),
            res.get("first_inference_ms"), res.get("rss_added_mb"),
            size / 1024.0 if isinstance(size, (int, float)) else None,
            f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else None, status,
        ])
    return rows


def format_results(doc: Mapping[str, Any]) -> str:
    """The results as a readable table, with the device and the profiling note."""
    from edge_sdk.report import format_table
    from edge_sdk.sysinfo import summary_line

    lines = [f"device: {summary_line(doc.get('device') or {})}"]
    opts = doc.get("options") or {}
    how = f"{opts.get('runs')} runs" if opts.get("runs") else \
        f"{opts.get('duration')} s and at least {opts.get('min_runs', 1)} runs per model"
    lines.append(f"timed: {opts.get('timed_call', TIMED_CALL)}; {opts.get('warmup')} warm-up, {how}, "
                 f"interleaved in blocks of {opts.get('block', BLOCK)}")
    lines.append(format_table(result_rows(doc), RESULT_HEADERS))
    for res in doc.get("results", []):
        if res.get("status") != "ok":
            lines.append(f"FAILED {clean_text(res.get('label'))} (threads {res.get('threads')}): "
                         f"{clean_text(res.get('error'))}")
    peak = doc.get("process_peak_rss_mb")
    if peak is not None:
        lines.append(f"process peak RSS: {peak:.1f} MB")
    for rec in doc.get("recommendations") or []:
        lines.extend(f"recommend: {line}" for line in rec.get("text", []))
    prof = doc.get("profiling") or {}
    if not prof.get("available"):
        lines.append(f"note: {prof.get('reason')}")
    # labels, errors and the device's description may come from a device or a file: no escape sequences
    return clean_text("\n".join(lines), newlines=True)


# -- compare ---------------------------------------------------------------------------------------

#: Fields a current results file has; compare names the ones an older file lacks.
TOP_LEVEL_FIELDS = ("format", "created", "device", "options", "results")
DEVICE_FIELDS = ("cpu_model", "machine", "cores", "os", "python", "backend")
RESULT_FIELDS = ("label", "threads", "batch", "status", "runs", "latency_us.median", "latency_us.mean",
                 "latency_us.p90", "latency_us.p99", "latency_us.min", "latency_us.max", "latency_us.std",
                 "throughput.inferences_per_s", "load_ms", "first_inference_ms", "rss_added_mb",
                 "process_peak_rss_mb", "file_size_bytes", "ratio_vs_first")


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def read_results(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a results JSON; raise :class:`BenchFormatError` if it is not one."""
    import json

    file = Path(path)
    if not file.is_file():
        raise BenchFormatError(f"results file not found: {file} (expected a JSON file from edge-sdk bench --json)")
    size = file.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise BenchFormatError(f"{file} holds {size:,} bytes; a results file from edge-sdk bench --json is at most "
                               f"{MAX_RESULTS_BYTES:,} bytes")
    doc = parse_results_json(file.read_bytes(), str(file))
    if not isinstance(doc, dict):
        raise BenchFormatError(f"{file} holds a JSON {type(doc).__name__}; expected an object from edge-sdk bench --json")
    if not isinstance(doc.get("results"), list):
        raise BenchFormatError(
            f"{file} has no 'results' list (top-level keys: {sorted(doc)}); expected a file from edge-sdk bench --json "
            f"(format {RESULTS_FORMAT})"
        )
    return check_results_document(doc, str(file), complete=False)


def parse_results_json(data: bytes, source: str) -> Any:
    """Parse a results document's bytes, refusing (naming ``source``) what is not JSON or nests without end."""
    import json

    from edge_sdk.console import clean_text

    # Each { or [ becomes a Python object: a bound on them bounds the memory the parse can take, whatever
    # the answer holds (a real document has a few per result).
    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_RESULTS_CONTAINERS:
        raise BenchFormatError(f"{source}: {containers:,} lists and objects; a results document from edge-sdk "
                               f"bench --json has far fewer (at most {MAX_RESULTS_CONTAINERS:,} accepted)")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise BenchFormatError(f"{source}: the document nests lists and objects deeper than "
                               f"{MAX_DOCUMENT_DEPTH} levels; a results file from edge-sdk bench --json never does") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BenchFormatError(f"{source} is not JSON ({clean_text(first_line(exc), limit=200)}); expected a file "
                               "from edge-sdk bench --json") from None


# -- the results document's schema -----------------------------------------------------------------
#
# A results document may come from another machine (``bench --target``, ``bench compare``): it is data to
# check, never truth. check_results_document() refuses, naming the field, anything that would print as
# nan or -5, crash a formatter, or be written back as invalid JSON.

#: Nesting a results document never needs (results[].inputs[].quantization.scale is 7 deep).
MAX_DOCUMENT_DEPTH = 32
#: The largest number any field may hold (1e15 us is 31 years; 1e15 bytes a petabyte).
MAX_FIELD_NUMBER = 1e15
#: The largest results document read (a file for compare, a device's answer): a second of samples of a 10 us
#: model is about 1 MB per model and thread count.
MAX_RESULTS_BYTES = 32 * 1024 * 1024
#: The most lists and objects a results document may hold (bounds the memory its parse takes).
MAX_RESULTS_CONTAINERS = 200_000
#: Statuses a result may have.
RESULT_STATUSES = ("ok", "failed")
_TIMINGS = ("median", "mean", "p90", "p99", "min", "max")


def _shown(value: Any) -> str:
    """A short, printable description of a bad value for a one-line message."""
    from edge_sdk.console import clean_text

    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        digits = len(str(abs(value))) if abs(value) < 10 ** 60 else None
        return str(value) if digits is not None and digits <= 20 else "a number with more than 20 digits"
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return repr(clean_text(value, limit=40))
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _document_depth(doc: Any) -> int:
    """The deepest nesting of lists and objects in ``doc`` (iterative: no recursion limit to hit)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DOCUMENT_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


class _Checker:
    """Field checks that raise :class:`BenchFormatError` as ``SOURCE: FIELD: expected X, got Y``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str, value: Any) -> None:
        raise BenchFormatError(f"{self.source}: {where}: expected {expected}, got {_shown(value)}")

    def number(self, obj: Mapping[str, Any], key: str, where: str, *, low: float = 0.0, strict: bool = False,
               required: bool = False, integer: bool = False, signed: bool = False) -> None:
        """``obj[key]``: a finite number (``> low`` if strict, ``>= low``; any sign if ``signed``), or absent/null."""
        name = f"{where}.{key}" if where else key
        if key not in obj or obj[key] is None:
            if required:
                self.fail(name, "a number" if not integer else "an integer", obj.get(key))
            return
        self.value(obj[key], name, low=low, strict=strict, integer=integer, signed=signed)

    def value(self, value: Any, name: str, *, low: float = 0.0, strict: bool = False, integer: bool = False,
              signed: bool = False) -> None:
        """A finite number (see :meth:`number`) named ``name`` in the message."""
        kind = "an integer" if integer else "a finite number"
        if signed:
            bound = ""
        else:
            bound = (f" > {low:g}" if strict else f" >= {low:g}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(name, kind + bound, value)
        try:
            number = float(value)
        except OverflowError:  # a 400-digit integer
            number = MAX_FIELD_NUMBER * 10
        if not math.isfinite(number):
            self.fail(name, kind + bound, value)
        if abs(number) > MAX_FIELD_NUMBER:
            self.fail(name, f"{kind}{bound} (at most {MAX_FIELD_NUMBER:g})", value)
        if not signed and (number < low or (strict and number <= low)):
            self.fail(name, kind + bound, value)

    def text(self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False,
             choices: Optional[Sequence[str]] = None, limit: int = 4096) -> None:
        """``obj[key]``: a string (one of ``choices``; at most ``limit`` characters), or absent/null."""
        name = f"{where}.{key}" if where else key
        if key not in obj or obj[key] is None:
            if required:
                self.fail(name, "a string" if not choices else "one of " + ", ".join(choices), obj.get(key))
            return
        value = obj[key]
        if choices is not None and value not in choices:
            self.fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
        if not isinstance(value, str) or len(value) > limit:
            self.fail(name, f"a string of at most {limit} characters", value)

    def mapping(self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> Mapping[str, Any]:
        """``obj[key]``: an object (``{}`` when absent or null and not required)."""
        name = f"{where}.{key}" if where else key
        value = obj.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(name, "an object", value)
        return value

    def sequence(self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> List[Any]:
        """``obj[key]``: a list (``[]`` when absent or null and not required)."""
        name = f"{where}.{key}" if where else key
        value = obj.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.fail(name, "a list", value)
        return value


def check_results_document(doc: Any, source: str, complete: bool = True) -> Dict[str, Any]:
    """Check a bench results document field by field; return it, or raise :class:`BenchFormatError` naming
    the first bad field (``results[0].latency_us.median: expected a finite number > 0, got NaN``).

    ``complete=True`` (a device's answer): the fields a current ``edge-sdk bench --json`` writes must be
    there, at least one result. ``complete=False`` (``bench compare`` on older files): fields may be
    missing (compare names them), but those present must have the right type and range.
    Timings must be finite and positive, statuses known, nesting at most :data:`MAX_DOCUMENT_DEPTH`.
    """
    check = _Checker(source)
    if not isinstance(doc, dict):
        check.fail("the document", "a JSON object from edge-sdk bench --json", doc)
    if _document_depth(doc) > MAX_DOCUMENT_DEPTH:
        raise BenchFormatError(f"{source}: the document nests lists and objects deeper than {MAX_DOCUMENT_DEPTH} "
                               "levels; a results file from edge-sdk bench --json never does")
    check.text(doc, "format", "", required=complete, limit=64)
    if complete and not doc["format"].startswith("edge-sdk-bench/"):
        check.fail("format", f"{RESULTS_FORMAT!r} (edge-sdk-bench/N)", doc["format"])
    check.text(doc, "created", "", limit=64)
    check.number(doc, "wall_time_s", "")
    check.number(doc, "process_peak_rss_mb", "")
    device = check.mapping(doc, "device", "", required=complete)
    for key in ("cpu_model", "device_model", "machine", "python", "python_implementation", "numpy", "edge_sdk",
                "hostname"):
        check.text(device, key, "device", limit=512)
    check.number(device, "cpu_max_mhz", "device")
    check.number(device, "memory_total_mb", "device")
    cores = check.mapping(device, "cores", "device")
    for key in ("logical", "usable"):
        check.number(cores, key, "device.cores", low=1, integer=True)
    for block in ("os", "backend"):
        part = check.mapping(device, block, "device")
        for key, value in part.items():
            if value is not None and not isinstance(value, str) or isinstance(value, str) and len(value) > 4096:
                check.fail(f"device.{block}.{key}", "a string or null", value)
    options = check.mapping(doc, "options", "")
    check.number(options, "runs", "options", low=1, integer=True)
    check.number(options, "min_runs", "options", low=1, integer=True)
    check.number(options, "warmup", "options", integer=True)
    check.number(options, "block", "options", low=1, integer=True)
    check.number(options, "duration", "options", strict=True)
    check.text(options, "timed_call", "options", limit=256)
    for i, model in enumerate(check.sequence(doc, "models", "")):
        if not isinstance(model, dict):
            check.fail(f"models[{i}]", "an object with label and path", model)
        check.text(model, "label", f"models[{i}]", limit=1024)
        check.text(model, "path", f"models[{i}]")
    results = check.sequence(doc, "results", "", required=True)
    if complete and not results:
        check.fail("results", "at least one result", results)
    for i, res in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(res, dict):
            check.fail(where, "an object with label, threads, status and latency_us", res)
        check.text(res, "label", where, required=complete, limit=1024)
        check.text(res, "model", where, limit=1024)
        check.text(res, "path", where)
        check.text(res, "accelerator", where, limit=256)
        check.number(res, "threads", where, low=1, integer=True, required=complete)
        check.number(res, "batch", where, low=1, integer=True)
        check.text(res, "status", where, required=complete, choices=RESULT_STATUSES)
        check.text(res, "error", where)
        ok = res.get("status", "ok") == "ok"
        latency = check.mapping(res, "latency_us", where, required=ok and complete)
        for key in _TIMINGS:
            check.number(latency, key, f"{where}.latency_us", strict=True, required=ok and complete)
        check.number(latency, "std", f"{where}.latency_us", required=ok and complete)
        if ok and complete and not (latency["min"] <= latency["median"] <= latency["max"]):
            check.fail(f"{where}.latency_us.median", "a value between latency_us.min and latency_us.max",
                       latency["median"])
        check.number(res, "runs", where, low=1, integer=True, required=ok and complete)
        throughput = check.mapping(res, "throughput", where)
        for key in ("inferences_per_s", "samples_per_s"):
            check.number(throughput, key, f"{where}.throughput", strict=True)
        for key in ("load_ms", "first_inference_ms", "process_peak_rss_mb", "rss_before_mb", "rss_after_mb"):
            check.number(res, key, where)
        check.number(res, "rss_added_mb", where, signed=True)
        check.number(res, "file_size_bytes", where, integer=True)
        check.number(res, "warmup_runs", where, integer=True)
        check.number(res, "ratio_vs_first", where, strict=True)
        samples = check.sequence(res, "samples_us", where)
        for j, sample in enumerate(samples):
            check.value(sample, f"{where}.samples_us[{j}]")
    profiling = check.mapping(doc, "profiling", "")
    check.text(profiling, "reason", "profiling")
    return doc


def missing_fields(doc: Mapping[str, Any]) -> List[str]:
    """The fields of the current format that ``doc`` lacks, as dotted paths (``results[].rss_added_mb``)."""
    missing = [f for f in TOP_LEVEL_FIELDS if f not in doc]
    device = doc.get("device")
    if isinstance(device, Mapping):
        missing += [f"device.{f}" for f in DEVICE_FIELDS if f not in device]
    results = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    ok = [r for r in results if r.get("status", "ok") == "ok"] or results
    for name in RESULT_FIELDS:
        if ok and any(_get(r, name) is _MISSING for r in ok):
            missing.append(f"results[].{name}")
    return missing


def compare_results(paths: Sequence[Union[str, os.PathLike]]) -> Dict[str, Any]:
    """Line up several results files by (model, threads, batch) with median ratios against the first file."""
    if len(paths) < 2:
        raise BenchOptionError(f"compare needs at least two results files, got {len(paths)}")
    docs = [read_results(p) for p in paths]
    files = []
    for path, doc in zip(paths, docs):
        fmt = doc.get("format")
        files.append({
            "path": str(path),
            "format": fmt,
            "device": sysinfo_summary(doc.get("device")),
            "created": doc.get("created"),
            "missing_fields": missing_fields(doc),
            "older_format": fmt != RESULTS_FORMAT,
        })
    keys: List[Tuple[Any, Any, Any]] = []
    tables: List[Dict[Tuple[Any, Any, Any], Mapping[str, Any]]] = []
    for doc in docs:
        table = {}
        for res in doc["results"]:
            if not isinstance(res, Mapping):
                continue
            key = (res.get("label") or Path(str(res.get("path", "?"))).name, res.get("threads"), res.get("batch"))
            table[key] = res
            if key not in keys:
                keys.append(key)
        tables.append(table)
    rows = []
    for key in keys:
        medians = []
        for table in tables:
            res = table.get(key)
            median = _get(res, "latency_us.median") if res is not None else _MISSING
            ok = res is not None and res.get("status", "ok") == "ok" and isinstance(median, (int, float))
            medians.append(float(median) if ok else None)
        base = medians[0]
        rows.append({
            "model": key[0], "threads": key[1], "batch": key[2], "median_us": medians,
            "ratio_vs_first_file": [(m / base) if (m is not None and base) else None for m in medians],
        })
    comparable = any(r["median_us"][0] is not None and any(m is not None for m in r["median_us"][1:]) for r in rows)
    if not comparable:
        lacking = [f"{f['path']} lacks {', '.join(f['missing_fields'])}" for f in files if f["missing_fields"]]
        raise BenchFormatError(
            "no model has a median latency in both the first file and another one, so nothing can be compared"
            + (": " + "; ".join(lacking) if lacking else " (the files share no model, thread count and batch)")
        )
    return {"format": "edge-sdk-bench-compare/1", "files": files, "rows": rows}


def sysinfo_summary(device: Any) -> Optional[str]:
    """One line describing a results file's device, or ``None`` when the file has no device block."""
    if not isinstance(device, Mapping):
        return None
    from edge_sdk.sysinfo import summary_line

    return summary_line(device)


def format_compare(report: Mapping[str, Any]) -> str:
    """The compare report as text: one column of medians and ratios per file, then missing fields."""
    from edge_sdk.report import format_table

    files = report["files"]
    lines = []
    for i, f in enumerate(files):
        older = f" (format {f.get('format')!r}; current is {RESULTS_FORMAT})" if f["older_format"] else ""
        lines.append(clean_text(f"[{i}] {f['path']}: {f.get('device') or 'no device description'}{older}"))
    headers = ["model", "thr", "batch"] + [f"median us [{i}]" for i in range(len(files))] + \
              [f"x [0] [{i}]" for i in range(1, len(files))]
    rows = []
    for row in report["rows"]:
        ratios = [f"{r:.2f}x" if r is not None else None for r in row["ratio_vs_first_file"][1:]]
        rows.append([row["model"], row["threads"], row["batch"], *row["median_us"], *ratios])
    lines.append(format_table(rows, headers))
    for i, f in enumerate(files):
        if f["missing_fields"]:
            lines.append(f"[{i}] {f['path']} lacks fields of {RESULTS_FORMAT}: {', '.join(f['missing_fields'])}")
    return clean_text("\n".join(lines), newlines=True)
