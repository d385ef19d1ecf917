"""The ``edge-sdk`` command line.

Each subcommand is a small module in this package with ``register(subparsers)``;
modules that need TensorFlow import it inside their ``run`` function only, so
``edge-sdk bench|run|inspect|verify`` work on a device with the light runtime.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from edge_sdk import __version__
from edge_sdk.console import first_line
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI and return its exit code.

    0 ok, 1 a gate or check failed, 2 could not run (the error is one ``error: ...`` line on
    stderr, never a traceback; ``EDGE_SDK_DEBUG=1`` shows the traceback of an unexpected error),
    130 interrupted, 141 stdout closed early (``edge-sdk run ... | head -1``), as a Unix tool
    killed by SIGPIPE reports.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, inside the handlers below
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except EdgeSdkError as exc:
        return _error(str(exc))
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
        return _error(f"unexpected {type(exc).__name__}: {first_line(exc, 300)} (an edge-sdk bug; please "
                      "report it; EDGE_SDK_DEBUG=1 shows the traceback)")


def _error(message: str) -> int:
    try:
        print(f"error: {message}", file=sys.stderr)
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
