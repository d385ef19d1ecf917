"""``edge-sdk keygen``: make an Ed25519 key pair for signing models."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edge_sdk.console import print_json, require_extra
from edge_sdk.errors import InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keygen`` subcommand."""
    parser = subparsers.add_parser(
        "keygen",
        help="create an Ed25519 key pair (NAME.key private, NAME.pub public) for edge-sdk sign",
        description="Write NAME.key (private, PKCS#8 PEM, mode 0600) and NAME.pub (public PEM) into "
        "--out-dir. Keep the private key on the build machine or in a CI secret; ship only the "
        "public key, embedded in the app. Refuses to overwrite existing keys unless --force.",
    )
    parser.add_argument("--out-dir", "-o", default=".", help="directory for the key files (default: .)")
    parser.add_argument("--name", default="edge-sdk", help="file name stem (default: edge-sdk)")
    parser.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="encrypt the private key with the passphrase in environment variable VAR",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")
    parser.add_argument("--json", action="store_true", help="print paths and key id as JSON")
    parser.set_defaults(func=run)


def passphrase_from_env(var: str | None) -> bytes | None:
    """The passphrase bytes in environment variable ``var`` (None when ``var`` is None)."""
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise InputError(
            f"--passphrase-env {var}: expected a non-empty environment variable {var}, it is unset or empty"
        )
    return value.encode("utf-8")


def run(args: argparse.Namespace) -> int:
    """Generate and write the key pair."""
    require_extra("sign", "keygen")
    from edge_sdk.outputs import check_file_output
    from edge_sdk.report import format_table
    from edge_sdk.signing import write_keypair

    passphrase = passphrase_from_env(args.passphrase_env)
    for suffix in (".key", ".pub"):  # before the key is made: a directory or device there, an unwritable place
        check_file_output(Path(args.out_dir) / f"{args.name}{suffix}", "--out-dir/--name")
    info = write_keypair(args.out_dir, args.name, passphrase=passphrase, overwrite=args.force)
    if args.json:
        print_json(info)
        return 0
    print(
        format_table(
            [
                [
                    "private key",
                    info["private_key"] + (" (encrypted)" if info["encrypted"] else "") + "  keep secret, never ship",
                ],
                ["public key", info["public_key"] + "  embed in the app"],
                ["key id", info["key_id"]],
                ["public key (raw hex)", info["public_key_hex"]],
            ],
            ["item", "value"],
        )
    )
    return 0
