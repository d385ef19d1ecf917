"""The results document of ``edge-sdk bench``: its format, the checks a document from elsewhere must pass,
reading it, the results table, and ``bench compare``; the timing engine is :mod:`edge_sdk.bench`.

A results document may come from another machine (``bench --target``, ``bench compare``): it is data
to check, never truth.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from edge_sdk.console import clean_text
from edge_sdk.errors import BenchFormatError, BenchOptionError

RESULTS_FORMAT = "edge-sdk-bench/1"
#: What every result times (recorded in the document's options; the default for older documents).
TIMED_CALL = "Model.predict_all(inputs in storage dtype, raw=True)"
#: Timed calls per model per interleaving round: long enough to keep caches warm, short enough to interleave.
BLOCK = 10


# -- reporting -----------------------------------------------------------------------------------

RESULT_HEADERS = (
    "model",
    "thr",
    "batch",
    "median us",
    "mean us",
    "p90 us",
    "p99 us",
    "min us",
    "max us",
    "std us",
    "inf/s",
    "load ms",
    "first ms",
    "RSS+ MB",
    "size KB",
    "x first",
    "status",
)


def result_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """Rows for :data:`RESULT_HEADERS`, one per model and thread count."""
    rows = []
    for res in doc.get("results", []):
        lat = res.get("latency_us") or {}
        size = res.get("file_size_bytes")
        ratio = res.get("ratio_vs_first")
        status = res.get("status", "?")
        if status != "ok":
            status = "FAILED (below)"
        rows.append(
            [
                res.get("label"),
                res.get("threads"),
                res.get("batch"),
                lat.get("median"),
                lat.get("mean"),
                lat.get("p90"),
                lat.get("p99"),
                lat.get("min"),
                lat.get("max"),
                lat.get("std"),
                (res.get("throughput") or {}).get("inferences_per_s"),
                res.get("load_ms"),
                res.get("first_inference_ms"),
                res.get("rss_added_mb"),
                size / 1024.0 if isinstance(size, (int, float)) else None,
                f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else None,
                status,
            ]
        )
    return rows


def format_results(doc: Mapping[str, Any]) -> str:
    """The results as a readable table, with the device and the profiling note."""
    from edge_sdk.report import format_table
    from edge_sdk.sysinfo import summary_line

    lines = [f"device: {summary_line(doc.get('device') or {})}"]
    opts = doc.get("options") or {}
    how = (
        f"{opts.get('runs')} runs"
        if opts.get("runs")
        else f"{opts.get('duration')} s and at least {opts.get('min_runs', 1)} runs per model"
    )
    lines.append(
        f"timed: {opts.get('timed_call', TIMED_CALL)}; {opts.get('warmup')} warm-up, {how}, "
        f"interleaved in blocks of {opts.get('block', BLOCK)}"
    )
    lines.append(format_table(result_rows(doc), RESULT_HEADERS))
    for res in doc.get("results", []):
        if res.get("status") != "ok":
            lines.append(
                f"FAILED {clean_text(res.get('label'))} (threads {res.get('threads')}): {clean_text(res.get('error'))}"
            )
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
RESULT_FIELDS = (
    "label",
    "threads",
    "batch",
    "status",
    "runs",
    "latency_us.median",
    "latency_us.mean",
    "latency_us.p90",
    "latency_us.p99",
    "latency_us.min",
    "latency_us.max",
    "latency_us.std",
    "throughput.inferences_per_s",
    "load_ms",
    "first_inference_ms",
    "rss_added_mb",
    "process_peak_rss_mb",
    "file_size_bytes",
    "ratio_vs_first",
)


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results JSON; raise :class:`BenchFormatError` if it is not one."""

    file = Path(path)
    if not file.is_file():
        raise BenchFormatError(f"results file not found: {file} (expected a JSON file from edge-sdk bench --json)")
    size = file.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise BenchFormatError(
            f"{file} holds {size:,} bytes; a results file from edge-sdk bench --json is at most "
            f"{MAX_RESULTS_BYTES:,} bytes"
        )
    doc = parse_results_json(file.read_bytes(), str(file))
    if not isinstance(doc, dict):
        raise BenchFormatError(
            f"{file} holds a JSON {type(doc).__name__}; expected an object from edge-sdk bench --json"
        )
    if not isinstance(doc.get("results"), list):
        raise BenchFormatError(
            f"{file} has no 'results' list (top-level keys: {sorted(doc)}); expected a file from edge-sdk bench --json "
            f"(format {RESULTS_FORMAT})"
        )
    return check_results_document(doc, str(file), complete=False)


def parse_results_json(data: bytes, source: str) -> Any:
    """Parse a results document's bytes with :func:`edge_sdk.jsonio.loads_strict` (duplicate keys and
    nesting beyond :data:`MAX_DOCUMENT_DEPTH` refused), naming ``source`` in every refusal."""
    from edge_sdk.jsonio import loads_strict

    # Each { or [ becomes a Python object: a bound on them bounds the memory the parse can take, whatever
    # the answer holds (a real document has a few per result).
    containers = data.count(b"{") + data.count(b"[")
    if containers > MAX_RESULTS_CONTAINERS:
        raise BenchFormatError(
            f"{source}: {containers:,} lists and objects; a results document from edge-sdk "
            f"bench --json has far fewer (at most {MAX_RESULTS_CONTAINERS:,} accepted)"
        )
    return loads_strict(data, f"{source}: the results document", BenchFormatError, max_depth=MAX_DOCUMENT_DEPTH)


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
        digits = len(str(abs(value))) if abs(value) < 10**60 else None
        return str(value) if digits is not None and digits <= 20 else "a number with more than 20 digits"
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return repr(clean_text(value, limit=40))
    names: dict[type, str] = {dict: "an object", list: "a list"}
    return names.get(type(value), type(value).__name__)


class _Checker:
    """Field checks that raise :class:`BenchFormatError` as ``SOURCE: FIELD: expected X, got Y``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str, value: Any) -> NoReturn:
        raise BenchFormatError(f"{self.source}: {where}: expected {expected}, got {_shown(value)}")

    def number(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        *,
        low: float = 0.0,
        strict: bool = False,
        required: bool = False,
        integer: bool = False,
        signed: bool = False,
    ) -> None:
        """``obj[key]``: a finite number (``> low`` if strict, ``>= low``; any sign if ``signed``), or absent/null."""
        name = f"{where}.{key}" if where else key
        if key not in obj or obj[key] is None:
            if required:
                self.fail(name, "a number" if not integer else "an integer", obj.get(key))
            return
        self.value(obj[key], name, low=low, strict=strict, integer=integer, signed=signed)

    def value(
        self,
        value: Any,
        name: str,
        *,
        low: float = 0.0,
        strict: bool = False,
        integer: bool = False,
        signed: bool = False,
    ) -> None:
        """A finite number (see :meth:`number`) named ``name`` in the message."""
        kind = "an integer" if integer else "a finite number"
        if signed:
            bound = ""
        else:
            bound = f" > {low:g}" if strict else f" >= {low:g}"
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

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        choices: Sequence[str] | None = None,
        limit: int = 4096,
    ) -> None:
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

    def sequence(self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> list[Any]:
        """``obj[key]``: a list (``[]`` when absent or null and not required)."""
        name = f"{where}.{key}" if where else key
        value = obj.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            self.fail(name, "a list", value)
        return value


def check_results_document(doc: Any, source: str, complete: bool = True) -> dict[str, Any]:
    """Check a bench results document field by field; return it, or raise :class:`BenchFormatError` naming
    the first bad field (``results[0].latency_us.median: expected a finite number > 0, got NaN``).

    ``complete=True`` (a device's answer): the fields a current ``edge-sdk bench --json`` writes must be
    there, at least one result. ``complete=False`` (``bench compare`` on older files): fields may be
    missing (compare names them), but those present must have the right type and range.
    Timings must be finite and positive, statuses known. Nesting is bounded when the document is parsed
    (:func:`parse_results_json`, at most :data:`MAX_DOCUMENT_DEPTH` levels).
    """
    check = _Checker(source)
    if not isinstance(doc, dict):
        check.fail("the document", "a JSON object from edge-sdk bench --json", doc)
    check.text(doc, "format", "", required=complete, limit=64)
    if complete and not doc["format"].startswith("edge-sdk-bench/"):
        check.fail("format", f"{RESULTS_FORMAT!r} (edge-sdk-bench/N)", doc["format"])
    check.text(doc, "created", "", limit=64)
    check.number(doc, "wall_time_s", "")
    check.number(doc, "process_peak_rss_mb", "")
    device = check.mapping(doc, "device", "", required=complete)
    for key in (
        "cpu_model",
        "device_model",
        "machine",
        "python",
        "python_implementation",
        "numpy",
        "edge_sdk",
        "hostname",
    ):
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
            check.fail(
                f"{where}.latency_us.median", "a value between latency_us.min and latency_us.max", latency["median"]
            )
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


def missing_fields(doc: Mapping[str, Any]) -> list[str]:
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


def compare_results(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Line up several results files by (model, threads, batch) with median ratios against the first file."""
    if len(paths) < 2:
        raise BenchOptionError(f"compare needs at least two results files, got {len(paths)}")
    docs = [read_results(p) for p in paths]
    files: list[dict[str, Any]] = []
    for path, doc in zip(paths, docs, strict=False):
        fmt = doc.get("format")
        files.append(
            {
                "path": str(path),
                "format": fmt,
                "device": sysinfo_summary(doc.get("device")),
                "created": doc.get("created"),
                "missing_fields": missing_fields(doc),
                "older_format": fmt != RESULTS_FORMAT,
            }
        )
    keys: list[tuple[Any, Any, Any]] = []
    tables: list[dict[tuple[Any, Any, Any], Mapping[str, Any]]] = []
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
            ok = res is not None and res.get("status", "ok") == "ok"
            medians.append(float(median) if ok and isinstance(median, (int, float)) else None)
        base = medians[0]
        rows.append(
            {
                "model": key[0],
                "threads": key[1],
                "batch": key[2],
                "median_us": medians,
                "ratio_vs_first_file": [(m / base) if (m is not None and base) else None for m in medians],
            }
        )
    comparable = any(r["median_us"][0] is not None and any(m is not None for m in r["median_us"][1:]) for r in rows)
    if not comparable:
        lacking = [f"{f['path']} lacks {', '.join(f['missing_fields'])}" for f in files if f["missing_fields"]]
        raise BenchFormatError(
            "no model has a median latency in both the first file and another one, so nothing can be compared"
            + (": " + "; ".join(lacking) if lacking else " (the files share no model, thread count and batch)")
        )
    return {"format": "edge-sdk-bench-compare/1", "files": files, "rows": rows}


def sysinfo_summary(device: Any) -> str | None:
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
    headers = (
        ["model", "thr", "batch"]
        + [f"median us [{i}]" for i in range(len(files))]
        + [f"x [0] [{i}]" for i in range(1, len(files))]
    )
    rows = []
    for row in report["rows"]:
        ratios = [f"{r:.2f}x" if r is not None else None for r in row["ratio_vs_first_file"][1:]]
        rows.append([row["model"], row["threads"], row["batch"], *row["median_us"], *ratios])
    lines.append(format_table(rows, headers))
    for i, f in enumerate(files):
        if f["missing_fields"]:
            lines.append(f"[{i}] {f['path']} lacks fields of {RESULTS_FORMAT}: {', '.join(f['missing_fields'])}")
    return clean_text("\n".join(lines), newlines=True)
