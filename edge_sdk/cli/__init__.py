"""The ``edge-sdk`` command line.

Each subcommand is a small module in this package with ``register(subparsers)``;
modules that need TensorFlow import it inside their ``run`` function only, so
``edge-sdk bench|run|inspect|verify`` work on a device with the light runtime.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from edge_sdk import __version__
from edge_sdk.errors import EdgeSdkError

# Order is the order `edge-sdk --help` lists them in.
COMMANDS = (
    "demo",
    "train",
    "convert",
    "parity",
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
    """Run the CLI and return its exit code (0 ok, 1 check failed, 2 could not run)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeSdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
