"""Atomic file output: write to a temporary file beside the target, then rename.

A reader never sees a half-written artifact, and a process killed mid-write
leaves the destination as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_sdk.errors import EdgeSdkError, OutputError

PathLike = str | os.PathLike[str]


def _default_mode(directory: bool = False) -> int:
    """The mode a plain ``open()`` / ``mkdir()`` would give, honouring the umask.

    ``mkstemp``/``mkdtemp`` create private (0600/0700) entries; artifacts are
    meant to be shared (served to devices, read by other users), so they get
    the ordinary mode once complete.
    """
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    """The OS's words for a failed call ("No space left on device"), without errno noise."""
    return exc.strerror or str(exc) or type(exc).__name__


def resolve_output(path: PathLike) -> Path:
    """Where a write to ``path`` lands: a symlink is followed to its existing target (the link stays
    and points at the new content); a dangling link is refused, never written through or replaced."""
    path = Path(path)
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not target.exists():
            raise OutputError(
                f"{path} is a symbolic link to {target}, which does not exist; refusing to write "
                "through a dangling link (remove the link or point it at an existing file)"
            )
        return target
    return path


def file_kind(path: PathLike) -> str:
    """``"file"``, ``"directory"``, ``"missing"`` or the kind of special file (``"character device"``, ...)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # under a file, nothing can exist
        return "missing"
    except OSError:
        return "unreadable path"
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def describe_file_start(head: bytes) -> str:
    """What the first bytes of a file look like, for messages that say what came ("a zip archive")."""
    if not head:
        return "an empty file"
    if head[4:8] == b"TFL3":
        return "a TFLite model"
    if head.startswith(b"\x93NUMPY"):
        return "a .npy array"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (a .npz or .keras file?)"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (a Keras .h5 file?)"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head[:1] == b"\x80":
        return "a Python pickle"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "a JSON document"
    if stripped[:1] == b"<":
        return "an HTML/XML document"
    if b"-----BEGIN" in head:
        return "a PEM key"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"bytes {head[:8]!r}"


def read_head(path: PathLike, size: int = 64) -> bytes:
    """The first ``size`` bytes of a regular file (``b""`` if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def not_a_regular_file(path: PathLike) -> str | None:
    """``None`` for a readable regular file; otherwise why not, as a phrase: "does not exist",
    "is a directory", "is a character device, not a regular file"."""
    kind = file_kind(path)
    if kind == "file":
        return None
    if kind == "missing":
        return "does not exist"
    if kind == "directory":
        return "is a directory"
    return f"is a {kind}, not a regular file"


#: Characters tempfile adds to a prefix (mkstemp/mkdtemp's random part).
_RANDOM_CHARS = 8


def _name_max(directory: Path) -> int:
    """The longest file name (bytes) ``directory``'s filesystem allows; 255 where it cannot say."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def temp_prefix(path: PathLike, tail: str, suffix: str = "") -> str:
    """The prefix of a temporary beside ``path``: ``.NAME{tail}``, shortened so the whole temporary name
    (prefix, tempfile's random characters, ``suffix``) fits the filesystem's NAME_MAX.

    A legal 255-byte name would otherwise give a 270-byte temporary ("File name too long", issue 26):
    such a name keeps its start and gets ``~`` plus 12 hex characters of its sha256, so two long names
    that share a start still get distinct prefixes (and a stale-temporary sweep finds each one's own).
    """
    path = Path(path)
    name = path.name
    limit = _name_max(path.parent if str(path.parent) else Path("."))
    room = limit - _RANDOM_CHARS - len(os.fsencode(suffix)) - len(os.fsencode(tail)) - 1  # 1: the leading dot
    if len(os.fsencode(name)) <= room:
        return f".{name}{tail}"
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    head = os.fsencode(name)[: max(room - 13, 0)].decode("utf-8", "ignore")  # 13: "~" + 12 hex
    return f".{head}~{digest}{tail}"


def _file_target(path: PathLike) -> Path:
    """The regular-file path a file write replaces; a directory or a device is refused, never replaced."""
    target = resolve_output(path)
    kind = file_kind(target)
    if kind == "directory":
        raise OutputError(f"{path} is a directory; expected a file path (a file output never replaces a directory)")
    if kind not in ("file", "missing"):
        raise OutputError(f"{path} is a {kind}, not a regular file; expected a file path to write")
    return target


def _make_parent(path: Path) -> None:
    """Create ``path``'s missing parent directories, or say in one line why they cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise OutputError(f"cannot write {path}: {blocker} is a file, not a directory") from None
    except OSError as exc:
        raise OutputError(f"cannot create the directory {path.parent} for {path}: {_reason(exc)}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write_bytes(path: PathLike, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically and return the path written.

    The bytes go to a temporary file beside ``path`` that is renamed into place
    once complete, so a failed or interrupted write (disk full, Ctrl-C) leaves
    the old file as it was and no temporary behind. A symlink is written
    through (see :func:`resolve_output`); a directory or device at ``path`` is
    refused. ``mode`` (e.g. ``0o600`` for a private key) is the file's mode
    from its first byte; default: what ``open()`` would give under the umask.
    OS failures raise :class:`~edge_sdk.errors.OutputError` naming the path.
    """
    path = _file_target(path)
    _make_parent(path)
    tmp = None
    try:
        # mkstemp creates the file 0600, so nothing private is ever readable by others
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path, ".", ".tmp"), suffix=".tmp", dir=path.parent)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, EdgeSdkError):
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str, *, mode: int | None = None) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`) and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def atomic_output_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    For writers that insist on a file name (``np.savez``, ``model.save``).
    The temporary name keeps the suffix, so format detection by extension works.
    Like :func:`atomic_write_bytes`, never replaces a directory, follows a
    symlink to its target, and removes the temporary on any failure; an
    ``OSError`` in the writer becomes an :class:`~edge_sdk.errors.OutputError`.
    """
    path = _file_target(path)
    _make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=temp_prefix(path.with_name(path.stem), ".", f".tmp{path.suffix}"),
            suffix=f".tmp{path.suffix}",
            dir=path.parent,
        )
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise OutputError(f"cannot write {path}: the writer did not create {tmp_path}")
        if tmp_path.is_dir():
            raise OutputError(f"cannot write {path}: the writer made a directory, expected a file")
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, path)
    except BaseException as exc:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp_path.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, EdgeSdkError):
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        raise
    _fsync_dir(path.parent)


def staging_prefix(dest: PathLike) -> str:
    """The name prefix of :func:`atomic_output_dir`'s staging directories for ``dest``: ``.DEST.tmp-``
    (shortened for a name near NAME_MAX, see :func:`temp_prefix`); glob ``prefix + "*"`` finds them."""
    return temp_prefix(dest, ".tmp-")


@contextlib.contextmanager
def atomic_output_dir(dest: PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``dest`` whole.

    On any exception (or a kill) ``dest`` is untouched and the temporary
    directory, named ``.<dest>.tmp-*``, is removed (or left for a later
    :func:`clean_stale_temporaries`). A symlink ``dest`` is followed: its target
    directory is replaced and the link kept. An existing file at ``dest`` is
    refused (a directory output never replaces a file). Whether an existing
    directory may be replaced at all is the caller's decision
    (:mod:`edge_sdk.outputs`).
    """
    dest = resolve_output(dest)
    kind = file_kind(dest)
    if kind not in ("directory", "missing"):
        raise OutputError(f"{dest} is a {kind}; expected a directory path (a directory output never replaces a file)")
    _make_parent(dest)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=staging_prefix(dest), dir=dest.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {dest}: {_reason(exc)}") from None
    try:
        yield tmp
        try:
            os.chmod(tmp, _default_mode(directory=True))
            if dest.exists():
                if _exchange(tmp, dest):  # one atomic swap: dest is never absent
                    shutil.rmtree(tmp, ignore_errors=True)
                else:  # no renameat2 here: two renames, dest briefly absent in between
                    old = Path(tempfile.mkdtemp(prefix=temp_prefix(dest, ".old-"), dir=dest.parent))
                    os.rmdir(old)
                    os.replace(dest, old)
                    try:
                        os.replace(tmp, dest)
                    except BaseException:
                        os.replace(old, dest)  # put the previous version back
                        raise
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
        except OSError as exc:
            if isinstance(exc, EdgeSdkError):
                raise
            raise OutputError(f"cannot replace {dest}: {_reason(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(dest.parent)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only here: keeps `import edge_sdk` light

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):  # the filesystem cannot swap
        return False
    raise OSError(error, f"cannot swap {a} and {b}: {os.strerror(error)}")


def clean_stale_temporaries(directory: PathLike) -> int:
    """Remove temporaries a killed writer left in ``directory``; return how many."""
    directory = Path(directory)
    removed = 0
    if not directory.is_dir():
        return 0
    for entry in directory.iterdir():
        if entry.name.startswith(".") and (".tmp" in entry.name or ".old-" in entry.name):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed += 1
    return removed


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
