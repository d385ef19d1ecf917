"""The ``edge-sdk`` command line.

Each subcommand is a small module in this package with ``register(subparsers)``;
modules that need TensorFlow import it inside their ``run`` function only, so
``edge-sdk bench|run|inspect|verify`` work on a device with the light runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from edge_sdk import __version__
from edge_sdk.console import clean_text, first_line
from edge_sdk.errors import EdgeSdkError

# Order is the order `edge-sdk --help` lists them in.
COMMANDS = (
    "demo",
    "train",
    "convert",
    "parity",
    "data",
    "bench",
    "inspect",
    "run",
    "keygen",
    "sign",
    "verify",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="edge-sdk",
        description="Train, convert (prune, distill, int8-quantize), validate and benchmark "
        "models for on-device inference with LiteRT.",
    )
    parser.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"edge_sdk.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edge_sdk.cli.{name}":
                continue  # a subcommand not built yet
            raise
        module.register(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, like Ctrl-C's KeyboardInterrupt: every ``finally`` and
    ``except BaseException`` runs (staging folders removed, child processes killed, temporary directories
    cleaned at exit), and :func:`main` returns 128 + the signal number, as the signal's default action would."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Signals that end a run the way Ctrl-C does (issue 26 s4): ``kill PID``, a closed terminal or ssh session.
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM/SIGHUP raise :class:`Terminated`; a repeat during the clean-up is
    ignored, so the clean-up finishes. Only signals left at their default action are taken over (an
    embedding program's own handlers stay), and the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        for other in previous:
            signal.signal(other, lambda *_: None)  # the first one wins: let the clean-up run
        raise Terminated(signum)

    for signum in TERMINATING_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    0 ok, 1 a gate or check failed, 2 could not run (the error is one ``error: ...`` line on
    stderr, never a traceback; ``EDGE_SDK_DEBUG=1`` shows the traceback of an unexpected error),
    130 interrupted (143 SIGTERM, 129 SIGHUP: cleaned up the same way), 141 stdout closed early (``edge-sdk run ... | head -1``), as a Unix tool
    killed by SIGPIPE reports.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _terminate_like_interrupt(), warnings.catch_warnings():
            # edge-sdk's own warnings: one "warning: ..." line, no source line
            warnings.showwarning = _one_line_warning(warnings.showwarning)
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, inside the handlers below
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except EdgeSdkError as exc:
        return _error(str(exc))
    except Terminated as exc:
        print(f"terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _error("out of memory; try a smaller batch, fewer samples or a smaller model")
    except OSError as exc:  # a file the command read or wrote, named by the OS error
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or first_line(exc)}")
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback only on request
        if os.environ.get("EDGE_SDK_DEBUG"):
            raise
        return _error(
            f"unexpected {type(exc).__name__}: {first_line(exc, 300)} (an edge-sdk bug; please "
            "report it; EDGE_SDK_DEBUG=1 shows the traceback)"
        )


def _one_line_warning(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` printing edge-sdk's warnings (the clip warning) as one ``warning: ...`` line
    on stderr, like every other CLI warning; other warnings go to ``show`` as before."""

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        from edge_sdk.quant import QuantizationClipWarning

        if isinstance(category, type) and issubclass(category, QuantizationClipWarning):
            try:
                print(f"warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
            except (BrokenPipeError, ValueError):
                pass
            return
        show(message, category, filename, lineno, file, line)

    return showwarning


def _error(message: str) -> int:
    try:
        # a message may quote a device's or a file's text: no escape sequence of theirs reaches the terminal
        print(f"error: {clean_text(message, newlines=True)}", file=sys.stderr)
    except BrokenPipeError:  # stderr closed too: nothing left to tell
        pass
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
