"""Benchmarks on a device over SSH: ``edge-sdk bench MODEL... --target ssh://[USER@]HOST[:PORT]``.

The build machine copies the models (and the manifests beside them) into a fresh
temporary directory on the device, runs the light runtime's ``edge-sdk bench
--json -`` there, removes the directory, and returns the device's results
document (with the device's own description) so the caller prints the same table
as a local run and ``edge-sdk bench compare`` lines up several devices.

Transport is the system ``ssh`` only, so ``~/.ssh/config`` (host aliases, keys,
jump hosts) applies as for any ssh command, and ``BatchMode=yes`` means ssh never
prompts: no password is asked for, passed or stored. The files travel as a tar
stream on the same connection (``tar -x`` on the device), which works on devices
without ``scp`` or an SFTP server (minimal images, Android shells).

This module imports only the standard library and edge_sdk light modules.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from edge_sdk.console import clean_text
from edge_sdk.errors import EdgeSdkError

#: Exit status the device-side script uses when the edge-sdk command is missing there.
_MISSING_STATUS = 127
_MISSING_MARK = "edge-sdk-remote: command not found:"
#: How to install the light runtime on a device (printed when it is missing).
INSTALL_HINT = (
    "install the light runtime there: copy the wheel built with `pip wheel --no-deps -w dist .` "
    "and run `python3 -m pip install edge_sdk-*.whl` (it pulls numpy and ai-edge-litert), "
    "or name the command with --remote-command"
)
DEFAULT_CONNECT_TIMEOUT_S = 15
_TARGET_RE = re.compile(
    r"^ssh://(?:(?P<user>[^@:/\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@:/\s\[\]]+)"
    r"(?::(?P<port>\d{1,5}))?/?$"
)


class RemoteError(EdgeSdkError):
    """The device could not be reached, or the benchmark could not run there."""


@dataclass(frozen=True)
class SshTarget:
    """Where to run: ``ssh://[USER@]HOST[:PORT]`` (HOST may be an alias from ~/.ssh/config)."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """``user@host`` (or ``host``) as ssh takes it."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def url(self) -> str:
        """The target as a URL, for results files and messages."""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{self.destination}{port}"


def parse_target(text: str) -> SshTarget:
    """Parse ``ssh://[USER@]HOST[:PORT]``; raise :class:`RemoteError` saying what was expected."""
    if not isinstance(text, str) or not text.startswith("ssh://"):
        raise RemoteError(f"--target: expected ssh://[USER@]HOST[:PORT], got {text!r}")
    if re.match(r"^ssh://[^@/]*:[^@/]*@", text):
        raise RemoteError(
            "--target: a password in the URL is refused; edge-sdk never stores or sends passwords "
            "(set up key authentication, e.g. ssh-copy-id, or an agent)"
        )
    match = _TARGET_RE.match(text)
    if not match:
        raise RemoteError(f"--target: expected ssh://[USER@]HOST[:PORT], got {text!r}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise RemoteError(f"--target: port must be 1..65535, got {port}")
    return SshTarget(host=match.group("host").strip("[]"), user=match.group("user"), port=int(port) if port else None)


def ssh_command(
    target: SshTarget,
    remote_script: str,
    ssh_config: str | None = None,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
) -> list[str]:
    """The ``ssh`` argv that runs ``remote_script`` with ``sh`` on the target, never prompting."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}"]
    if ssh_config:
        argv += ["-F", str(ssh_config)]
    if target.port:
        argv += ["-p", str(target.port)]
    # One argument after "--": the remote login shell runs it, `sh -c` makes the dialect known.
    return argv + ["--", target.destination, "sh -c " + shlex.quote(remote_script)]


def bench_arguments(options: Any) -> list[str]:
    """``edge-sdk bench`` flags that reproduce ``options`` (an :class:`edge_sdk.bench.BenchOptions`) remotely."""
    args = [
        "--warmup",
        str(options.warmup),
        "--threads",
        ",".join(str(t) for t in options.threads),
        "--seed",
        str(options.seed),
        "--quiet",
    ]
    if options.runs is not None:
        args += ["--runs", str(options.runs)]
    elif options.duration is not None:
        args += ["--duration", repr(float(options.duration))]
    batches = tuple(getattr(options, "batches", ()) or ())
    if batches:
        args += ["--batch", ",".join(str(b) for b in batches)]
    elif options.batch is not None:
        args += ["--batch", str(options.batch)]
    accelerators = tuple(getattr(options, "accelerators", (None,)) or (None,))
    if accelerators != (None,):  # only when asked: an older edge-sdk on the device lacks the flag
        args += ["--accelerator", ",".join(a or "interpreter" for a in accelerators)]
    if options.backend:
        args += ["--backend", str(options.backend)]
    if not options.verify:
        args.append("--no-verify")
    if not options.keep_samples:
        args.append("--no-samples")
    return args


def _bundle(models: Sequence[Path], input_path: Path | None) -> tuple[bytes, list[str], str | None]:
    """A tar of the models (each with its manifest) and the input file; returns (bytes, remote paths, input)."""
    from edge_sdk.manifest import manifest_path_for

    buffer = io.BytesIO()
    remote_models: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, model in enumerate(models):
            if not model.is_file():
                raise RemoteError(f"model not found: {model} (expected a .tflite file to copy to the device)")
            # m<i>/<parent>/<name>: no two models collide, and bench's labels match a local run's. The parent
            # of the normalised path: "../x/a.tflite" travels as m0/x/a.tflite (tar refuses ".." members).
            parent = Path(os.path.abspath(model)).parent.name
            folder = f"m{i}/{parent if parent not in ('', '.', '..') else 'model'}"
            tar.add(str(model), arcname=f"{folder}/{model.name}", recursive=False)
            manifest = manifest_path_for(model)
            if manifest.is_file():
                tar.add(str(manifest), arcname=f"{folder}/{manifest.name}", recursive=False)
            signature = model.with_name(model.name + ".sig")  # edge_sdk.signing's naming
            if signature.is_file():
                tar.add(str(signature), arcname=f"{folder}/{signature.name}", recursive=False)
            remote_models.append(f"{folder}/{model.name}")
        remote_input = None
        if input_path is not None:
            if not input_path.is_file():
                raise RemoteError(f"--input: file not found: {input_path}")
            remote_input = f"input/{input_path.name}"
            tar.add(str(input_path), arcname=remote_input, recursive=False)
    return buffer.getvalue(), remote_models, remote_input


def split_remote_command(remote_command: Any) -> list[str]:
    """``--remote-command`` as argv (``["edge-sdk"]`` when empty); :class:`RemoteError` when it is no command line."""
    if not isinstance(remote_command, str):
        raise RemoteError(
            f"--remote-command: expected a command line such as 'edge-sdk' or 'python3 -m edge_sdk', "
            f"got {type(remote_command).__name__} {remote_command!r}"
        )
    try:
        return shlex.split(remote_command) or ["edge-sdk"]
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise RemoteError(
            f"--remote-command: expected a command line such as 'edge-sdk' or 'python3 -m edge_sdk', "
            f"got {clean_text(remote_command, limit=200)!r} ({exc})"
        ) from None


def remote_script(remote_command: str, bench_args: Sequence[str]) -> str:
    """The POSIX sh script run on the device: unpack stdin into a temp dir, bench there, clean up."""
    command = split_remote_command(remote_command)
    quoted = " ".join(shlex.quote(a) for a in command)
    return "\n".join(
        [
            "set -u",
            f"command -v {shlex.quote(command[0])} >/dev/null 2>&1 || "
            f"{{ echo {shlex.quote(_MISSING_MARK)} {shlex.quote(command[0])} >&2; exit {_MISSING_STATUS}; }}",
            'dir=$(mktemp -d "${TMPDIR:-/tmp}/edge-sdk-bench.XXXXXX") || exit 2',
            "trap 'rm -rf \"$dir\"' EXIT",
            'tar -xf - -C "$dir" || { echo "edge-sdk-remote: could not unpack the models into $dir" >&2; exit 2; }',
            'cd "$dir" || exit 2',
            f"{quoted} bench {' '.join(shlex.quote(a) for a in bench_args)} --json -",
        ]
    )


def run_remote_benchmark(
    model_paths: Sequence[os.PathLike[str]],
    target: str,
    options: Any,
    *,
    ssh_config: str | None = None,
    remote_command: str = "edge-sdk",
    timeout: float | None = None,
) -> dict[str, Any]:
    """Benchmark ``model_paths`` on ``target`` (``ssh://...``) and return its results document.

    The document is the device's own ``edge-sdk bench --json`` output (its
    ``device`` block describes the device), with model paths mapped back to the
    local files and a ``target`` block naming where it ran.
    """
    parsed = parse_target(target)
    split_remote_command(remote_command)  # a malformed command line is refused before anything is sent
    models = [Path(p) for p in model_paths]
    if not models:
        raise RemoteError("give at least one model to benchmark")
    payload, remote_models, remote_input = _bundle(models, Path(options.input_path) if options.input_path else None)
    bench_args = list(remote_models) + bench_arguments(options)
    if remote_input:
        bench_args += ["--input", remote_input]
    argv = ssh_command(parsed, remote_script(remote_command, bench_args), ssh_config=ssh_config)
    if timeout is None:
        per_model = (options.runs or 0) * 0.05 + (options.duration or 1.0) + 30.0
        sweeps = (
            len(options.threads)
            * max(1, len(getattr(options, "batches", ()) or ()))
            * max(1, len(getattr(options, "accelerators", (None,)) or (None,)))
        )
        timeout = 60.0 + per_model * len(models) * sweeps
    returncode, stdout, stderr_bytes = _run_bounded(argv, payload, timeout, parsed.url)
    stderr = stderr_bytes.decode("utf-8", errors="replace").strip()
    last = clean_text(stderr.split("\n")[-1], limit=300) if stderr else ""  # not splitlines: \r is no line
    if returncode == 255:
        raise RemoteError(
            f"ssh to {parsed.url} failed: {last or 'no message'} (edge-sdk runs ssh with "
            "BatchMode=yes: use key authentication or an agent; ~/.ssh/config applies)"
        )
    if returncode == _MISSING_STATUS and _MISSING_MARK in stderr:
        raise RemoteError(
            f"{remote_command.split()[0] if remote_command.split() else 'edge-sdk'} is not installed "
            f"on {parsed.url} (or not on the PATH of a non-interactive ssh session): {INSTALL_HINT}"
        )
    if not stdout.strip():
        raise RemoteError(
            f"edge-sdk bench on {parsed.url} exited {returncode} without a results document: {last or 'no message'}"
        )
    from edge_sdk.bench_results import parse_results_json
    from edge_sdk.errors import BenchFormatError

    source = f"the results document from {parsed.url}"
    try:
        doc = parse_results_json(stdout, source)
    except BenchFormatError as exc:
        raise RemoteError(
            f"edge-sdk bench on {parsed.url} exited {returncode} without a valid results document: "
            f"{exc}" + (f" (its last message: {last})" if last else "")
        ) from None
    doc = check_device_document(doc, returncode, remote_models, source)
    _map_paths(doc, remote_models, models)
    doc["target"] = {
        "url": parsed.url,
        "transport": "ssh",
        "remote_command": remote_command,
        "remote_exit_code": returncode,
    }
    return doc


#: ``edge-sdk bench`` exits 0 when every model ran, 1 when some failed, 2 when all failed.
_BENCH_EXIT_STATUSES = (0, 1, 2)


def check_device_document(doc: Any, returncode: int, remote_models: Sequence[str], source: str) -> dict[str, Any]:
    """A device's answer checked as data: the results schema, the exit status against the statuses, and
    every path one of the models sent (a device value never becomes a local file path). Ratios and
    recommendations are recomputed here from the checked medians, not taken from the device."""
    from edge_sdk import bench, bench_results
    from edge_sdk.errors import BenchFormatError

    try:
        bench_results.check_results_document(doc, source, complete=True)
    except BenchFormatError as exc:
        raise RemoteError(str(exc)) from None
    failed = [r for r in doc["results"] if r["status"] != "ok"]
    expected = 0 if not failed else 2 if len(failed) == len(doc["results"]) else 1
    if returncode not in _BENCH_EXIT_STATUSES or returncode != expected:
        raise RemoteError(
            f"{source}: the device's edge-sdk bench exited {returncode}, but its results say "
            f"{len(failed)} of {len(doc['results'])} failed (expected exit {expected}); "
            "the answer is not trusted"
        )
    sent = set(remote_models)
    for kind in ("models", "results"):
        for i, entry in enumerate(doc.get(kind) or []):
            if entry.get("path") is not None and entry["path"] not in sent:
                raise RemoteError(
                    f"{source}: {kind}[{i}].path: expected one of the models sent "
                    f"({', '.join(sorted(sent))}), got {clean_text(entry['path'], limit=80)!r}"
                )
    doc.pop("recommendations", None)
    bench.add_ratios(doc["results"], doc["results"][0]["label"])
    doc["recommendations"] = bench.recommend(doc["results"])
    checked: dict[str, Any] = doc
    return checked


def _run_bounded(argv: list[str], payload: bytes, timeout: float, url: str) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with ``payload`` on stdin; return (exit status, stdout, the tail of stderr).

    stdout is read in chunks and refused past :data:`edge_sdk.bench_results.MAX_RESULTS_BYTES` without being kept
    (ssh is stopped), so a device that answers without end costs the host that much memory at most.
    """
    from edge_sdk.bench_results import MAX_RESULTS_BYTES

    try:
        # its own process group: stopping it stops whatever it started (a ProxyCommand), and their pipes close
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except FileNotFoundError:
        raise RemoteError(
            "the ssh program was not found: install OpenSSH's client (apt-get install openssh-client)"
        ) from None
    # all three are pipes (PIPE above), and unbuffered-capable BufferedReaders for stdout and stderr
    stdin = cast(IO[bytes], proc.stdin)
    stdout, stderr = cast(io.BufferedReader, proc.stdout), cast(io.BufferedReader, proc.stderr)
    out = bytearray()
    err = bytearray()
    too_big = threading.Event()

    def feed() -> None:
        try:
            stdin.write(payload)
        except OSError:  # the device stopped reading (it failed, or answered already)
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def read_out() -> None:
        while True:
            chunk = stdout.read1(1 << 16)
            if not chunk:
                return
            if len(out) + len(chunk) > MAX_RESULTS_BYTES:
                too_big.set()
                _stop(proc)
                return
            out.extend(chunk)

    def read_err() -> None:
        while True:
            chunk = stderr.read1(1 << 16)
            if not chunk:
                return
            err.extend(chunk)
            if len(err) > _STDERR_TAIL * 2:  # only the end is ever shown
                del err[:-_STDERR_TAIL]

    threads = [threading.Thread(target=f, daemon=True) for f in (feed, read_out, read_err)]
    for thread in threads:
        thread.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise RemoteError(f"the benchmark on {url} did not finish within {timeout:.0f} s") from None
    except BaseException:  # Ctrl-C: ssh must not outlive us
        _stop(proc)
        raise
    finally:
        for thread in threads:
            thread.join(timeout=5)
    if too_big.is_set():
        raise RemoteError(
            f"the answer from {url} exceeds {MAX_RESULTS_BYTES:,} bytes; a results document from "
            "edge-sdk bench --json is far smaller (refused without reading the rest)"
        )
    return proc.returncode, bytes(out), bytes(err[-_STDERR_TAIL:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` and its process group (it was started in a session of its own) and reap it."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


#: How much of the device's stderr is kept (its last line is shown in errors).
_STDERR_TAIL = 64 * 1024


def _map_paths(doc: dict[str, Any], remote_models: Sequence[str], models: Sequence[Path]) -> None:
    """Replace the device's temporary paths with the local files they were copied from (each path was
    checked to be one of ``remote_models`` by :func:`check_device_document`)."""
    local = {remote: str(path) for remote, path in zip(remote_models, models, strict=False)}
    for entry in list(doc.get("models") or []) + list(doc.get("results") or []):
        if isinstance(entry, dict) and entry.get("path") in local:
            entry["remote_path"] = entry["path"]
            entry["path"] = local[entry["path"]]
