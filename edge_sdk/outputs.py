"""The output-path rules every edge-sdk command that writes follows, checked before any work starts.

1. An output that is, contains, or lies inside an input (a model, its manifest
   ``X.json``, its signature ``X.sig``, data files, SavedModel directories) is
   refused. Paths are compared after resolving symlinks and ``..``, and hard
   links to the same file count as the same file.
2. A file output never replaces a directory, a device or a pipe; and it replaces
   an existing file only if that file is of the kind the output writes (a JSON
   report replaces a JSON file, never a model) and is not read-only.
3. A directory output replaces (``convert --out``) or writes into
   (``train --out``, ``demo --out``) only an empty directory or one edge-sdk
   wrote earlier: one holding the marker :data:`MARKER_FILE`, or the
   ``summary.json`` / ``metrics.json`` / ``backup/run.json`` / ``demo.json``
   those commands write.
   Any other non-empty directory is refused unless ``force``; rule 1 holds even
   then. ``convert`` records the entries it wrote in the marker, so files a
   person added since are not replaced silently either. The current directory,
   its ancestors, the home directory and ``/`` are never replaced whole.
4. The place the output goes must be writable now: a probe file is created (and
   one byte written, so a full disk shows) in its directory, or in the nearest
   existing ancestor when the parents are still to be created.
5. A symlink output is written through to its existing target, which the rules
   above then apply to; a dangling link is refused.

Every refusal is an :class:`~edge_sdk.errors.OutputError` (exit 2 in the CLI)
whose one line names the output and the conflicting path. The writes themselves
are atomic (:mod:`edge_sdk.fileio`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from edge_sdk.errors import OutputError
from edge_sdk.fileio import (
    PathLike,
    atomic_write_text,
    describe_file_start,
    file_kind,
    read_head,
    resolve_output,
)
from edge_sdk.manifest import manifest_path_for

MARKER_FILE = ".edge-sdk-output.json"
MARKER_FORMAT = "edge-sdk-output/1"


@dataclasses.dataclass(frozen=True)
class Protected:
    """A path an output must not touch, and what it is (``"model"``, ``"manifest of model m.tflite"``)."""

    path: Path
    role: str


def model_inputs(path: PathLike | None, role: str = "model") -> list[Protected]:
    """A model and the files that travel with it: its manifest ``X.json`` and signature ``X.sig``.

    The companions are listed whether they exist or not: an output written there
    would pass itself off as the model's manifest or signature.
    """
    if not path:
        return []
    model = Path(path)
    name = model.name
    found = [Protected(model, role), Protected(manifest_path_for(model), f"manifest of {role} {name}")]
    if model.suffix:
        found.append(Protected(model.with_name(name + ".sig"), f"signature of {role} {name}"))
    return found


def path_inputs(path: PathLike | None, role: str) -> list[Protected]:
    """``path`` as an input if it names something on disk (a dataset name such as ``digits`` does not)."""
    if not path or str(path) == "-":
        return []
    candidate = Path(path)
    return [Protected(candidate, role)] if os.path.lexists(candidate) else []


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _same_file(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overlap(out: PathLike, flag: str, protected: Iterable[Protected]) -> None:
    """Raise :class:`OutputError` if ``out`` is, contains, or lies inside any protected path."""
    target = _real(out)
    for item in protected:
        source = _real(item.path)
        if target == source or _same_file(out, item.path):
            how = "is"
        elif target in source.parents:
            how = "contains"
        elif source in target.parents:
            how = "lies inside"
        else:
            continue
        named = "" if str(out) == str(item.path) or item.role.endswith(item.path.name) else f" ({item.path})"
        raise OutputError(
            f"{flag} {out} {how} the {item.role}{named}; refusing to write over an input: "
            "choose an output path outside the inputs"
        )


def refuse_duplicates(outputs: Sequence[tuple[str, PathLike | None]]) -> None:
    """Raise :class:`OutputError` if two output options name the same path (``--json r --html r``)."""
    seen: dict[Path, str] = {}
    for flag, path in outputs:
        if not path or str(path) == "-":
            continue
        key = _real(path)
        if key in seen:
            raise OutputError(f"{flag} {path} is also the {seen[key]} output; give each output its own path")
        seen[key] = flag


def probe_writable(directory: PathLike, flag: str, out: PathLike) -> None:
    """Raise :class:`OutputError` unless a file can be created (and a byte written) in ``directory``,
    or in its nearest existing ancestor when ``directory`` is still to be created."""
    place = Path(os.path.abspath(os.fspath(directory)))
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise OutputError(f"{flag} {out}: {place} is a {file_kind(place)}, not a directory; cannot write there")
    try:
        fd, name = tempfile.mkstemp(prefix=".edge-sdk-probe.", dir=place)
    except OSError as exc:
        raise OutputError(f"{flag} {out}: cannot write in {place}: {exc.strerror or exc}") from None
    try:
        os.write(fd, b"\0")  # a full disk refuses the first byte, not the empty file
    except OSError as exc:
        raise OutputError(f"{flag} {out}: cannot write in {place}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
        os.unlink(name)


def _resolve(out: PathLike, flag: str) -> Path:
    try:
        return resolve_output(out)
    except OutputError as exc:  # a dangling link: say which option gave it
        raise OutputError(f"{flag} {exc}") from None


# What an existing file must look like for an output of each kind to replace it: a report never
# replaces a model, a .npz of outputs never replaces a manifest.
_KINDS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "json": ("JSON", lambda head: head.lstrip()[:1] in (b"{", b"[")),
    "html": ("HTML", lambda head: head.lstrip()[:1] == b"<"),
    "png": ("PNG", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    "npz": (".npz", lambda head: head.startswith(b"PK\x03\x04")),
    "tflite": ("TFLite", lambda head: head[4:8] == b"TFL3"),
    "keras": (".keras (zip)", lambda head: head.startswith(b"PK\x03\x04")),
}


def check_file_output(
    out: PathLike | None,
    flag: str,
    protected: Iterable[Protected] = (),
    *,
    kind: str | None = None,
    allow_stdout: bool = False,
) -> Path | None:
    """Check a file output before any work; return the path the write will land on.

    ``kind`` (``json``, ``html``, ``png``, ``npz``, ``tflite``, ``keras``) is what the output
    writes; an existing non-empty file of another kind is refused. ``None`` (and
    ``-`` when ``allow_stdout``) means stdout: nothing to check.
    """
    if out is None or (allow_stdout and str(out) == "-"):
        return None
    refuse_overlap(out, flag, protected)
    target = _resolve(out, flag)
    what = file_kind(target)
    if what == "directory":
        raise OutputError(
            f"{flag} {out} is a directory; expected a file path (a file output never replaces a directory)"
        )
    if what not in ("file", "missing"):
        raise OutputError(f"{flag} {out} is a {what}, not a regular file; expected a file path to write")
    if what == "file":
        mode = target.stat().st_mode
        if not mode & 0o222:
            raise OutputError(f"{flag} {out} is read-only (mode {mode & 0o777:04o}); refusing to replace it")
        head = read_head(target)
        if kind and head and not _KINDS[kind][1](head):
            raise OutputError(
                f"{flag} {out} exists and is {describe_file_start(head)}, not a {_KINDS[kind][0]} file; refusing "
                "to replace what edge-sdk did not write: choose a new path or remove the file first"
            )
        if kind == "json" and not flag.endswith("manifest") and _is_manifest(target):
            raise OutputError(
                f"{flag} {out} is a model's manifest (edge-sdk-manifest/1); refusing to replace it with "
                "another document: choose a new path"
            )
    probe_writable(target.parent, flag, out)
    return target


def _is_manifest(path: Path) -> bool:
    """Whether ``path`` holds an edge-sdk model manifest (its format key, read from the first 4 KB)."""
    from edge_sdk.manifest import MANIFEST_FORMAT

    return f'"format": "{MANIFEST_FORMAT}"'.encode() in read_head(path, 4096).replace(b'":"', b'": "')


def read_marker(directory: PathLike) -> dict[str, Any] | None:
    """The marker edge-sdk left in ``directory`` (``None`` if absent or unreadable)."""
    try:
        data = json.loads((Path(directory) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def _json_keys(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return set(data) if isinstance(data, dict) else set()


def written_by_edge_sdk(directory: PathLike) -> bool:
    """Whether ``directory`` is one edge-sdk wrote: its marker, or the summary convert, train or demo leave."""
    directory = Path(directory)
    if read_marker(directory) is not None:
        return True
    return (
        {"recipe", "artifacts"} <= _json_keys(directory / "summary.json")  # convert
        or {"model", "epochs_run"} <= _json_keys(directory / "metrics.json")  # train, finished
        or {"model", "dataset"} <= _json_keys(directory / "backup" / "run.json")  # train, killed mid-way
        or {"exit_codes", "models"} <= _json_keys(directory / "demo.json")
    )  # demo


def _never_replaced(target: Path) -> str | None:
    real = _real(target)
    cwd = _real(os.getcwd())
    if real == cwd or real in cwd.parents:
        return "the current directory" if real == cwd else "an ancestor of the current directory"
    if real == _real(Path.home()):
        return "the home directory"
    if real == real.parent:
        return "the filesystem root"
    return None


def check_dir_output(
    out: PathLike,
    flag: str,
    protected: Iterable[Protected] = (),
    *,
    force: bool = False,
    replace: bool = True,
    force_hint: str = "--force",
) -> Path:
    """Check a directory output before any work; return the directory the write will land on.

    ``replace=True`` for outputs that replace the directory whole (``convert``),
    ``False`` for commands that write into it (``train``, ``demo``). ``force_hint`` is how the
    refusal tells the caller to force it (``--force`` in the CLI, ``force=True`` in the library).
    """
    refuse_overlap(out, flag, protected)
    target = _resolve(out, flag)
    what = file_kind(target)
    if what not in ("directory", "missing"):
        raise OutputError(f"{flag} {out} is a {what}; expected a directory (a directory output never replaces a file)")
    if what == "directory":
        why_not = _never_replaced(target) if replace else None
        entries = sorted(p.name for p in target.iterdir())
        if entries and not written_by_edge_sdk(target):
            if why_not:
                raise OutputError(f"{flag} {out} is {why_not}; refusing to replace it: choose a new directory")
            if not force:
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise OutputError(
                    f"{flag} {out} is a non-empty directory edge-sdk did not write ({_count(len(entries), 'entry', 'entries')}: {shown}); "
                    f"choose a new or empty directory, or pass {force_hint} to "
                    + ("replace it" if replace else "write into it")
                )
        elif why_not:
            raise OutputError(f"{flag} {out} is {why_not}; refusing to replace it: choose a new directory")
        elif replace and not force:
            recorded = (read_marker(target) or {}).get("entries")
            added = sorted(set(entries) - set(recorded) - {MARKER_FILE}) if isinstance(recorded, list) else []
            if added:  # edge-sdk's folder, but someone put their own files in it since
                shown = ", ".join(added[:3]) + (", ..." if len(added) > 3 else "")
                raise OutputError(
                    f"{flag} {out} holds {_count(len(added), 'entry', 'entries')} edge-sdk did not write ({shown}); "
                    f"move them out, choose another directory, or pass {force_hint} to replace it"
                )
        if not replace:
            probe_writable(target, flag, out)
    probe_writable(target.parent, flag, out)
    return target


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def mark_output_dir(directory: PathLike, command: str, *, record_entries: bool = False, **details: Any) -> Path:
    """Leave the marker that says edge-sdk wrote ``directory`` (``details``: e.g. the model trained).

    ``record_entries`` lists what is in it now, so a later replacement can tell files a user added since.
    """
    doc = {
        "format": MARKER_FORMAT,
        "command": command,
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **details,
    }
    if record_entries:
        doc["entries"] = sorted(p.name for p in Path(directory).iterdir() if p.name != MARKER_FILE)
    return atomic_write_text(Path(directory) / MARKER_FILE, json.dumps(doc, indent=2) + "\n")


OutputSpec = tuple[str, PathLike | None, str | None]


def check_file_outputs(
    outputs: Sequence[OutputSpec], protected: Sequence[Protected], allow_stdout: Sequence[str] = ()
) -> dict[str, Path | None]:
    """Check several file outputs of one command: each against the inputs, and against each other.

    ``outputs`` are ``(flag, path or None, kind)``; returns ``{flag: resolved path or None}``.
    """
    refuse_duplicates([(flag, path) for flag, path, _ in outputs])
    return {
        flag: check_file_output(path, flag, protected, kind=kind, allow_stdout=flag in allow_stdout)
        for flag, path, kind in outputs
    }


__all__ = [
    "MARKER_FILE",
    "MARKER_FORMAT",
    "OutputSpec",
    "Protected",
    "check_dir_output",
    "check_file_output",
    "check_file_outputs",
    "mark_output_dir",
    "model_inputs",
    "path_inputs",
    "probe_writable",
    "read_marker",
    "refuse_duplicates",
    "refuse_overlap",
    "written_by_edge_sdk",
]
