#!/usr/bin/env python
"""Fuzz ``edge_sdk.load`` + ``predict`` with mutated and truncated copies of real .tflite files.

    .venv/bin/python tools/fuzz_tflite.py out/float32.tflite out/int8.tflite --cases 10000 --seed 0

Each case is one deterministic mutation (from ``--seed`` and the case number)
of one of the given models: truncation, bit flips, random bytes, "interesting"
int32 values written over flatbuffer offsets/lengths/dims, chunk deletion,
duplication and insertion, splices of two models, and edits inside weight
buffers. Worker child processes load and run every case in turn and report
each result before taking the next, so a crash kills only a worker: it is
restarted, and the crash is charged to the case it was on.

Outcomes per case:

* ``crash``   the worker died (a signal): the interpreter crashed the process;
* ``hang``    no answer within ``--timeout`` seconds;
* ``foreign`` an exception that is not an ``EdgeSdkError`` escaped;
* ``refused`` a clean ``EdgeSdkError`` (counted per class);
* ``ran-same``  loaded and ran with outputs bitwise equal to the original's
  (the change hit bytes that do not matter);
* ``ran-wrong`` loaded and ran with different outputs or I/O: a silent wrong
  answer without a manifest. Each such file is then loaded with the original
  model's manifest, which must refuse it with ``IntegrityError``.

Exit status 0 when there were no crashes, hangs or foreign exceptions and the
manifest caught every silent wrong answer; 1 otherwise; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from edge_sdk.inspect_model import weight_buffer_ranges  # noqa: E402  (after the path: a checkout's edge_sdk)

MUTATIONS = (
    "truncate",
    "bitflip",
    "bytes",
    "int32",
    "struct-flip",
    "weights",
    "delete",
    "duplicate",
    "insert",
    "splice",
    "header",
)
# Weights: how often each mutation is drawn. Structure-aware edits find parser bugs; weight edits
# exercise the silent-wrong-answer path that only the manifest catches.
_MUTATION_WEIGHTS = np.array([16, 12, 10, 16, 14, 6, 6, 5, 5, 4, 6], dtype=np.float64)
_INTERESTING_INT32 = (
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    1023,
    1024,
    4095,
    4096,
    65535,
    65536,
    0x7FFFFFFF,
    -0x80000000,
    -1,
    -2,
    -128,
    0x40000000,
    0x10000000,
)
#: Bytes of address space a worker may use, so one absurd allocation cannot take the shared machine down.
WORKER_ADDRESS_SPACE = 16 << 30
#: Largest input (float32 bytes) the fuzzer feeds a mutated model whose inputs changed.
MAX_FEED_BYTES = 64 << 20


# -- mutations ------------------------------------------------------------------------------------


@dataclass
class Source:
    """A model to mutate: its bytes, where its weights are, and its manifest if it has one."""

    path: Path
    data: bytes
    weights: list[tuple[int, int]]
    structure: np.ndarray  # byte offsets outside weight buffers
    manifest: dict[str, Any] | None = None


def load_source(path: Path) -> Source:
    """Read a model and index its weight and structure bytes."""
    from edge_sdk.manifest import find_manifest, read_manifest

    data = path.read_bytes()
    weights = weight_buffer_ranges(data)
    mask = np.ones(len(data), dtype=bool)
    for start, end in weights:
        mask[start:end] = False
    found = find_manifest(path)
    return Source(path, data, weights, np.flatnonzero(mask), read_manifest(found) if found else None)


def mutate(sources: Sequence[Source], seed: int, case: int) -> tuple[int, str, bytes]:
    """The mutated bytes of case ``case``: (source index, mutation name, bytes). Always differs from the source."""
    rng = np.random.default_rng([seed, case])
    index = int(rng.integers(len(sources)))
    src = sources[index]
    kind = MUTATIONS[int(rng.choice(len(MUTATIONS), p=_MUTATION_WEIGHTS / _MUTATION_WEIGHTS.sum()))]
    for _ in range(16):
        out = _apply(kind, src, sources, rng)
        if out != src.data:
            return index, kind, out
    return index, "truncate", src.data[: int(rng.integers(len(src.data)))]


def _apply(kind: str, src: Source, sources: Sequence[Source], rng: np.random.Generator) -> bytes:
    data = bytearray(src.data)
    n = len(data)
    if kind == "truncate":
        # Half anywhere, half near the end (where a partial download stops after most bytes came).
        cut = int(rng.integers(n)) if rng.random() < 0.5 else n - 1 - int(rng.integers(min(n, 512)))
        return bytes(data[:cut])
    if kind == "bitflip":
        for pos in rng.integers(n, size=int(rng.integers(1, 9))):
            data[pos] ^= 1 << int(rng.integers(8))
    elif kind == "bytes":
        for pos in rng.integers(n, size=int(rng.integers(1, 5))):
            data[pos] = int(rng.integers(256))
    elif kind == "int32":
        for _ in range(int(rng.integers(1, 3))):
            pos = int(src.structure[int(rng.integers(len(src.structure)))]) & ~3
            if pos + 4 > n:
                continue
            old = int.from_bytes(data[pos : pos + 4], "little", signed=True)
            choice = rng.random()
            if choice < 0.6:
                value = _INTERESTING_INT32[int(rng.integers(len(_INTERESTING_INT32)))]
            elif choice < 0.8:
                value = old + int(rng.integers(-16, 17))
            else:
                value = int(rng.integers(n + 64))
            value = max(-0x80000000, min(0x7FFFFFFF, value))
            data[pos : pos + 4] = int(value).to_bytes(4, "little", signed=True)
    elif kind == "struct-flip":
        for _ in range(int(rng.integers(1, 5))):
            pos = int(src.structure[int(rng.integers(len(src.structure)))])
            data[pos] ^= 1 << int(rng.integers(8))
    elif kind == "weights":
        if not src.weights:
            return _apply("bitflip", src, sources, rng)
        start, end = src.weights[int(rng.integers(len(src.weights)))]
        for pos in rng.integers(start, end, size=int(rng.integers(1, 5))):
            data[pos] = int(rng.integers(256))
    elif kind == "delete":
        start = int(rng.integers(n))
        del data[start : start + int(rng.integers(1, 65))]
    elif kind == "duplicate":
        start = int(rng.integers(n))
        chunk = data[start : start + int(rng.integers(1, 257))]
        at = int(rng.integers(n))
        data[at:at] = chunk
    elif kind == "insert":
        at = int(rng.integers(n))
        data[at:at] = rng.integers(256, size=int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    elif kind == "splice":
        other = sources[int(rng.integers(len(sources)))].data
        cut = int(rng.integers(8, n))
        other_cut = int(rng.integers(min(cut, len(other) - 1), len(other)))
        return bytes(data[:cut]) + other[other_cut:]
    elif kind == "header":
        for pos in rng.integers(min(n, 64), size=int(rng.integers(1, 4))):
            data[pos] = int(rng.integers(256))
    return bytes(data)


# -- real models to fuzz: training.tiny_models builds them (shared with the tests) --------------------

# -- the worker (child process) -------------------------------------------------------------------


def _feeds(specs, seed: int = 1234) -> dict[str, np.ndarray]:
    """Valid inputs for ``specs``; a dynamic batch gets 2 rows so the resize path runs too."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = tuple((2 if i == 0 else 1) if d is None else int(d) for i, d in enumerate(spec.shape))
        if spec.dtype.kind == "f" or spec.quantization is not None:
            feeds[spec.name] = rng.random(shape, dtype=np.float32)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feeds


def _io_key(model) -> tuple:
    return tuple((s.name, s.shape, s.dtype.str, s.quantization) for s in model.inputs + model.outputs)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


def run_case(data: bytes, reference: dict[str, Any], backend: str | None) -> dict[str, Any]:
    """Load and run one mutated file; classify the result (never raises)."""
    import edge_sdk
    from edge_sdk.errors import EdgeSdkError

    try:
        model = edge_sdk.load(data, backend=backend, verify=False, isolate=False)
        same_io = _io_key(model) == reference["io"]
        if not same_io and _feed_bytes(model.inputs) > MAX_FEED_BYTES:
            # The runtime accepted a model whose inputs changed to a size no app would send; it is
            # a silent change like any other, so it goes to the manifest check below, unrun.
            return _manifest_check(
                {"outcome": "ran-wrong", "io_changed": True, "not_run": True}, data, reference, backend
            )
        feeds = reference["feeds"] if same_io else _feeds(model.inputs)
        outputs = model.predict_all(feeds)
        outputs_raw = model.predict_all(feeds, raw=True)
    except EdgeSdkError as exc:
        return {"outcome": "refused", "error": type(exc).__name__, "message": str(exc)[:300]}
    except Exception as exc:  # noqa: BLE001 - the very thing the fuzzer hunts
        return {"outcome": "foreign", "error": type(exc).__name__, "message": str(exc)[:300]}
    if same_io and _same(outputs, reference["outputs"]) and _same(outputs_raw, reference["outputs_raw"]):
        return {"outcome": "ran-same"}
    return _manifest_check({"outcome": "ran-wrong", "io_changed": not same_io}, data, reference, backend)


def _feed_bytes(specs) -> int:
    total = 0
    for spec in specs:
        count = 1
        for i, d in enumerate(spec.shape):
            count *= (2 if i == 0 else 1) if d is None else max(int(d), 1)
        total += count * 4
    return total


def _manifest_check(
    result: dict[str, Any], data: bytes, reference: dict[str, Any], backend: str | None
) -> dict[str, Any]:
    """Load a silently changed file with the original's manifest: it must raise IntegrityError."""
    import edge_sdk
    from edge_sdk.errors import IntegrityError

    if reference["manifest"] is not None:
        try:
            edge_sdk.load(data, backend=backend, manifest=reference["manifest"], isolate=False)
            result["manifest"] = "accepted"
        except IntegrityError:
            result["manifest"] = "caught"
        except Exception as exc:  # noqa: BLE001 - the fuzzer records any other exception as a finding
            result["manifest"] = f"other: {type(exc).__name__}"
    else:
        result["manifest"] = "none"
    return result


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    except (ImportError, ValueError, OSError):
        pass


def worker_main(paths: Sequence[str], seed: int, backend: str | None) -> int:
    """Read case numbers on stdin, one per line; answer each with one JSON line on stdout."""
    import edge_sdk

    _limit_memory()
    sources = [load_source(Path(p)) for p in paths]
    references = []
    for src in sources:
        model = edge_sdk.load(src.data, backend=backend, verify=False, isolate=False)
        feeds = _feeds(model.inputs)
        references.append(
            {
                "io": _io_key(model),
                "feeds": feeds,
                "outputs": model.predict_all(feeds),
                "outputs_raw": model.predict_all(feeds, raw=True),
                "manifest": src.manifest,
            }
        )
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        case = int(line)
        index, kind, data = mutate(sources, seed, case)
        result = run_case(data, references[index], backend)
        result.update(case=case, source=index, mutation=kind, size=len(data))
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


# -- the parent -----------------------------------------------------------------------------------


class _Worker:
    """One worker process and a line reader with a deadline."""

    def __init__(self, paths: Sequence[str], seed: int, backend: str | None, startup_timeout: float):
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seed", str(seed)]
        if backend:
            command += ["--backend", backend]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            command + list(paths), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self._buffer = b""
        self.eof = False
        ready = self.read_line(startup_timeout)
        if ready is None:
            code = self.stop()
            raise RuntimeError(
                f"fuzz worker failed to start ({_signal_name(code)}); "
                "are the models valid .tflite files the runtime loads?"
            )

    def read_line(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON line, or None when the worker died or the deadline passed."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self.eof = True  # the worker closed its stdout: it died
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, case: int) -> bool:
        try:
            self.proc.stdin.write(f"{case}\n".encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def stop(self) -> int:
        """Kill the worker if alive; return its exit code."""
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return code


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


@dataclass
class FuzzReport:
    """Counts and details of a fuzz run."""

    models: list[str]
    seed: int
    backend: str
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    by_mutation: dict[str, Counter] = field(default_factory=dict)
    manifest: Counter = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: dict[str, Any]) -> None:
        """Count one case's result."""
        outcome = result["outcome"]
        self.cases += 1
        self.outcomes[outcome] += 1
        self.by_mutation.setdefault(result.get("mutation", "?"), Counter())[outcome] += 1
        if outcome == "refused":
            self.refusals[result["error"]] += 1
        if outcome == "ran-wrong":
            self.manifest[result.get("manifest", "none")] += 1
        if outcome in ("crash", "hang", "foreign") or result.get("manifest") not in (None, "caught", "none"):
            self.failures.append(result)

    @property
    def ok(self) -> bool:
        """No crash, hang or foreign exception, and every silent wrong answer caught by the manifest."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "models": self.models,
            "seed": self.seed,
            "backend": self.backend,
            "files_tried": self.cases,
            "crashes": self.outcomes["crash"],
            "hangs": self.outcomes["hang"],
            "foreign_exceptions": self.outcomes["foreign"],
            "refusals": self.outcomes["refused"],
            "refusals_by_error": dict(self.refusals.most_common()),
            "ran_same": self.outcomes["ran-same"],
            "silent_wrong_without_manifest": self.outcomes["ran-wrong"],
            "silent_wrong_caught_by_manifest": self.manifest["caught"],
            "by_mutation": {k: dict(v) for k, v in sorted(self.by_mutation.items())},
            "crashes_or_hangs_caught_by_isolate": sum(
                1
                for f in self.failures
                if f["outcome"] in ("crash", "hang") and str(f.get("isolate", "")).startswith("caught")
            ),
            "crashes_or_hangs_caught_by_manifest": sum(
                1 for f in self.failures if f["outcome"] in ("crash", "hang") and f.get("manifest") == "caught"
            ),
            "failures": self.failures[:50],
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
        }


def run_fuzz(
    models: Sequence[os.PathLike],
    cases: int,
    seed: int = 0,
    workers: int = 1,
    backend: str | None = None,
    timeout: float = 20.0,
    start: int = 0,
    progress: bool = False,
) -> FuzzReport:
    """Run ``cases`` fuzz cases (numbers ``start`` .. ``start+cases-1``) over ``models`` in worker processes."""
    paths = [str(Path(m).resolve()) for m in models]
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"model file not found: {path}")
    sources = [load_source(Path(p)) for p in paths]
    report = FuzzReport(models=paths, seed=seed, backend=backend or "auto")
    lock = threading.Lock()
    todo = iter(range(start, start + cases))
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=cases, desc="fuzz", file=sys.stderr, unit="case")
        except ImportError:
            bar = None

    def next_case() -> int | None:
        with lock:
            return next(todo, None)

    def record(result: dict[str, Any]) -> None:
        with lock:
            report.add(result)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(crashes=report.outcomes["crash"], refused=report.outcomes["refused"], refresh=False)
            elif progress and report.cases % 1000 == 0:
                print(f"fuzz: {report.cases}/{cases} cases, {report.outcomes['crash']} crashes", file=sys.stderr)

    def lane() -> None:
        worker = _Worker(paths, seed, backend, startup_timeout=max(60.0, timeout))
        try:
            while True:
                case = next_case()
                if case is None:
                    return
                result = worker.read_line(timeout) if worker.send(case) else None
                if result is None:
                    died = worker.eof
                    if died:
                        try:
                            worker.proc.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            died = False
                    code = worker.stop()
                    outcome = "crash" if died else "hang"
                    index, kind, data = mutate(sources, seed, case)
                    result = {
                        "outcome": outcome,
                        "case": case,
                        "signal": _signal_name(code) if died else None,
                        "source": index,
                        "mutation": kind,
                        "size": len(data),
                    }
                    worker = _Worker(paths, seed, backend, startup_timeout=max(60.0, timeout))
                elif result.get("case") != case:
                    raise RuntimeError(f"fuzz worker answered case {result.get('case')} for case {case}")
                record(result)
        finally:
            worker.stop()

    began = time.monotonic()
    errors: list[BaseException] = []

    def guarded(thread_target):
        def run():
            try:
                thread_target()
            except BaseException as exc:  # noqa: BLE001 - surfaced after join
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(lane), daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bar is not None:
        bar.close()
    if errors:
        raise errors[0]
    report.seconds = time.monotonic() - began
    for failure in report.failures:
        if failure["outcome"] in ("crash", "hang"):
            _check_guards(failure, sources, seed, backend, timeout)
    return report


def _check_guards(
    failure: dict[str, Any], sources: Sequence[Source], seed: int, backend: str | None, timeout: float
) -> None:
    """For a file that crashed or hung a worker: would ``isolate=True``, and the manifest, have refused it?"""
    from edge_sdk.errors import EdgeSdkError, IntegrityError
    from edge_sdk.isolate import check_in_child
    from edge_sdk.loader import load

    index, _, data = mutate(sources, seed, failure["case"])
    try:
        check_in_child(data, backend, None, timeout=timeout)
        failure["isolate"] = "missed"
    except EdgeSdkError as exc:
        failure["isolate"] = f"caught: {type(exc).__name__}: {str(exc)[:160]}"
    manifest = sources[index].manifest
    if manifest is None:
        failure["manifest"] = "none"
        return
    try:
        # The sha256 check runs before any interpreter sees the bytes, so this is safe in-process;
        # isolate=True guards it anyway should the check ever be skipped.
        load(data, backend=backend, manifest=manifest, isolate=True)
        failure["manifest"] = "accepted"
    except IntegrityError:
        failure["manifest"] = "caught"
    except EdgeSdkError as exc:
        failure["manifest"] = f"other: {type(exc).__name__}"


def save_failures(report: FuzzReport, directory: Path) -> list[Path]:
    """Write the bytes of each failing case to ``directory`` (``case-N.tflite``) for reproduction."""
    from edge_sdk.fileio import atomic_write_bytes

    sources = [load_source(Path(p)) for p in report.models]
    written = []
    for failure in report.failures:
        _, _, data = mutate(sources, report.seed, failure["case"])
        written.append(atomic_write_bytes(directory / f"case-{failure['case']}.tflite", data))
    return written


def format_report(report: FuzzReport) -> str:
    """Summary table and per-mutation table for people."""
    from edge_sdk.report import format_table

    d = report.to_dict()
    rows = [
        ["files tried", d["files_tried"]],
        ["crashes (worker died)", d["crashes"]],
        ["hangs", d["hangs"]],
        ["  crashes/hangs refused by isolate=True", d["crashes_or_hangs_caught_by_isolate"]],
        ["  crashes/hangs refused by manifest sha256", d["crashes_or_hangs_caught_by_manifest"]],
        ["foreign exceptions (not EdgeSdkError)", d["foreign_exceptions"]],
        ["refusals (EdgeSdkError)", d["refusals"]],
    ]
    rows += [[f"  {name}", count] for name, count in d["refusals_by_error"].items()]
    rows += [
        ["ran, outputs unchanged", d["ran_same"]],
        ["ran, silent wrong without manifest", d["silent_wrong_without_manifest"]],
        ["  of those caught by manifest sha256", d["silent_wrong_caught_by_manifest"]],
        ["seconds", d["seconds"]],
    ]
    text = format_table(rows, ["outcome", "count"])
    kinds = ["refused", "ran-same", "ran-wrong", "crash", "hang", "foreign"]
    per = [[name] + [counts.get(k, 0) for k in kinds] for name, counts in sorted(report.by_mutation.items())]
    text += "\n\n" + format_table(per, ["mutation"] + kinds)
    for failure in report.failures[:20]:
        text += f"\nFAIL case {failure['case']}: {json.dumps(failure)}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", help=".tflite files to mutate (a model.json beside each is used)")
    parser.add_argument(
        "--make-models",
        metavar="DIR",
        help="train a small CNN on scikit-learn digits, write DIR/float32.tflite and DIR/int8.tflite "
        "with manifests (needs the convert extra; reused when present) and fuzz them",
    )
    parser.add_argument("--cases", type=int, default=1000, help="number of mutated files to try (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed; a case is reproducible from (seed, case number)")
    parser.add_argument("--start", type=int, default=0, help="first case number (to replay one: --start N --cases 1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--backend", default=None, help="interpreter backend (default: the runtime's default)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--save-failures", metavar="DIR", help="write the bytes of failing cases into DIR")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE ('-' for stdout)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.models, args.seed, args.backend)
    if args.cases < 1 or args.workers < 1:
        parser.error("--cases and --workers must be at least 1")
    if args.make_models:
        out = Path(args.make_models)
        wanted = [out / "float32.tflite", out / "int8.tflite"]
        if not all(p.is_file() and p.with_suffix(".json").is_file() for p in wanted):
            out.mkdir(parents=True, exist_ok=True)
            print(f"training the digits models into {out} ...", file=sys.stderr)
            from edge_sdk.errors import EdgeSdkError
            from training.tiny_models import build_digits_models

            try:
                build_digits_models(out)  # a folder that is not edge-sdk's is refused, before training
            except EdgeSdkError as exc:
                print(f"error: --make-models: {exc}", file=sys.stderr)
                return 2
        args.models = [str(p) for p in wanted] + list(args.models)
    if not args.models:
        parser.error("give .tflite files to fuzz, or --make-models DIR")
    missing = [m for m in args.models if not Path(m).is_file()]
    if missing:
        print(f"error: model file not found: {', '.join(missing)} (expected .tflite files)", file=sys.stderr)
        return 2
    try:
        report = run_fuzz(
            args.models, args.cases, args.seed, args.workers, args.backend, args.timeout, args.start, progress=True
        )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.save_failures and report.failures:
        for path in save_failures(report, Path(args.save_failures)):
            print(f"saved {path}", file=sys.stderr)
    if args.json:
        from edge_sdk.console import print_json

        print_json(report.to_dict(), args.json)
    if args.json != "-":
        print(format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
