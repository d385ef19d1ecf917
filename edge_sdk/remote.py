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
import json
import os
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from edge_sdk.errors import EdgeSdkError

#: Exit status the device-side script uses when the edge-sdk command is missing there.
_MISSING_STATUS = 127
_MISSING_MARK = "edge-sdk-remote: command not found:"
#: How to install the light runtime on a device (printed when it is missing).
INSTALL_HINT = ("install the light runtime there: copy the wheel built with `pip wheel --no-deps -w dist .` "
                "and run `python3 -m pip install edge_sdk-*.whl` (it pulls numpy and ai-edge-litert), "
                "or name the command with --remote-command")
DEFAULT_CONNECT_TIMEOUT_S = 15
_TARGET_RE = re.compile(r"^ssh://(?:(?P<user>[^@:/\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@:/\s\[\]]+)"
                        r"(?::(?P<port>\d{1,5}))?/?$")


class RemoteError(EdgeSdkError):
    """The device could not be reached, or the benchmark could not run there."""


@dataclass(frozen=True)
class SshTarget:
    """Where to run: ``ssh://[USER@]HOST[:PORT]`` (HOST may be an alias from ~/.ssh/config)."""

    host: str
    user: Optional[str] = None
    port: Optional[int] = None

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
        raise RemoteError("--target: a password in the URL is refused; edge-sdk never stores or sends passwords "
                          "(set up key authentication, e.g. ssh-copy-id, or an agent)")
    match = _TARGET_RE.match(text)
    if not match:
        raise RemoteError(f"--target: expected ssh://[USER@]HOST[:PORT], got {text!r}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise RemoteError(f"--target: port must be 1..65535, got {port}")
    return SshTarget(host=match.group("host").strip("[]"), user=match.group("user"),
                     port=int(port) if port else None)


def ssh_command(target: SshTarget, remote_script: str, ssh_config: Optional[str] = None,
                connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S) -> List[str]:
    """The ``ssh`` argv that runs ``remote_script`` with ``sh`` on the target, never prompting."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}"]
    if ssh_config:
        argv += ["-F", str(ssh_config)]
    if target.port:
        argv += ["-p", str(target.port)]
    # One argument after "--": the remote login shell runs it, `sh -c` makes the dialect known.
    return argv + ["--", target.destination, "sh -c " + shlex.quote(remote_script)]


def bench_arguments(options: Any) -> List[str]:
    """``edge-sdk bench`` flags that reproduce ``options`` (an :class:`edge_sdk.bench.BenchOptions`) remotely."""
    args = ["--warmup", str(options.warmup), "--threads", ",".join(str(t) for t in options.threads),
            "--seed", str(options.seed), "--quiet"]
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


def _bundle(models: Sequence[Path], input_path: Optional[Path]) -> Tuple[bytes, List[str], Optional[str]]:
    """A tar of the models (each with its manifest) and the input file; returns (bytes, remote paths, input)."""
    from edge_sdk.manifest import manifest_path_for

    buffer = io.BytesIO()
    remote_models: List[str] = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, model in enumerate(models):
            if not model.is_file():
                raise RemoteError(f"model not found: {model} (expected a .tflite file to copy to the device)")
            # m<i>/<parent>/<name>: no two models collide, and bench's labels match a local run's.
            folder = f"m{i}/{model.parent.name or 'model'}"
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


def remote_script(remote_command: str, bench_args: Sequence[str]) -> str:
    """The POSIX sh script run on the device: unpack stdin into a temp dir, bench there, clean up."""
    command = shlex.split(remote_command) or ["edge-sdk"]
    quoted = " ".join(shlex.quote(a) for a in command)
    return "\n".join([
        "set -u",
        f"command -v {shlex.quote(command[0])} >/dev/null 2>&1 || "
        f"{{ echo {shlex.quote(_MISSING_MARK)} {shlex.quote(command[0])} >&2; exit {_MISSING_STATUS}; }}",
        'dir=$(mktemp -d "${TMPDIR:-/tmp}/edge-sdk-bench.XXXXXX") || exit 2',
        'trap \'rm -rf "$dir"\' EXIT',
        'tar -xf - -C "$dir" || { echo "edge-sdk-remote: could not unpack the models into $dir" >&2; exit 2; }',
        'cd "$dir" || exit 2',
        f"{quoted} bench {' '.join(shlex.quote(a) for a in bench_args)} --json -",
    ])


def run_remote_benchmark(model_paths: Sequence[os.PathLike], target: str, options: Any, *,
                         ssh_config: Optional[str] = None, remote_command: str = "edge-sdk",
                         timeout: Optional[float] = None) -> Dict[str, Any]:
    """Benchmark ``model_paths`` on ``target`` (``ssh://...``) and return its results document.

    The document is the device's own ``edge-sdk bench --json`` output (its
    ``device`` block describes the device), with model paths mapped back to the
    local files and a ``target`` block naming where it ran.
    """
    parsed = parse_target(target)
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
        sweeps = len(options.threads) * max(1, len(getattr(options, "batches", ()) or ())) * \
            max(1, len(getattr(options, "accelerators", (None,)) or (None,)))
        timeout = 60.0 + per_model * len(models) * sweeps
    try:
        done = subprocess.run(argv, input=payload, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise RemoteError("the ssh program was not found: install OpenSSH's client (apt-get install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise RemoteError(f"the benchmark on {parsed.url} did not finish within {timeout:.0f} s") from None
    stderr = done.stderr.decode("utf-8", errors="replace").strip()
    last = stderr.splitlines()[-1] if stderr else ""
    if done.returncode == 255:
        raise RemoteError(f"ssh to {parsed.url} failed: {last or 'no message'} (edge-sdk runs ssh with "
                          "BatchMode=yes: use key authentication or an agent; ~/.ssh/config applies)")
    if done.returncode == _MISSING_STATUS and _MISSING_MARK in stderr:
        raise RemoteError(f"{remote_command.split()[0] if remote_command.split() else 'edge-sdk'} is not installed "
                          f"on {parsed.url} (or not on the PATH of a non-interactive ssh session): {INSTALL_HINT}")
    try:
        doc = json.loads(done.stdout.decode("utf-8", errors="replace"))
    except ValueError:
        raise RemoteError(f"edge-sdk bench on {parsed.url} exited {done.returncode} without a results document: "
                          f"{last or 'no message'}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise RemoteError(f"edge-sdk bench on {parsed.url} returned JSON that is not a results document")
    _map_paths(doc, remote_models, models)
    doc["target"] = {"url": parsed.url, "transport": "ssh", "remote_command": remote_command,
                     "remote_exit_code": done.returncode}
    return doc


def _map_paths(doc: Dict[str, Any], remote_models: Sequence[str], models: Sequence[Path]) -> None:
    """Replace the device's temporary paths with the local files they were copied from."""
    local = {remote: str(path) for remote, path in zip(remote_models, models)}
    for entry in list(doc.get("models") or []) + list(doc.get("results") or []):
        if isinstance(entry, dict) and entry.get("path") in local:
            entry["remote_path"] = entry["path"]
            entry["path"] = local[entry["path"]]
