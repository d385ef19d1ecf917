"""``edge-sdk sign MODEL --key KEY``: write MODEL.sig covering the model and its manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_sdk.cli._common import require_model_file
from edge_sdk.console import print_json, require_extra


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sign`` subcommand."""
    parser = subparsers.add_parser(
        "sign",
        help="sign a model (and its manifest) with an Ed25519 private key",
        description="Write MODEL.sig (JSON: Ed25519 signature over the model's sha256 and the "
        "manifest's canonical sha256). The manifest beside the model (model.json) is covered when "
        "present; its sha256 must match the model. Check with edge-sdk verify or "
        "edge_sdk.load(..., public_key=...).",
    )
    parser.add_argument("model", help="path to the model file (.tflite)")
    parser.add_argument("--key", "-k", required=True, help="private key file from edge-sdk keygen (NAME.key)")
    parser.add_argument("--manifest", help="manifest to cover (default: the one beside the model, if any)")
    parser.add_argument("--out", "-o", help="signature file to write (default: MODEL.sig)")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    parser.add_argument("--json", action="store_true", help="print the signature envelope as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sign the model and write the signature file."""
    require_extra("sign", "sign")
    from edge_sdk.cli.keygen import passphrase_from_env
    from edge_sdk.manifest import manifest_path_for
    from edge_sdk.outputs import Protected, check_file_output
    from edge_sdk.report import format_table
    from edge_sdk.signing import sign_model

    require_model_file(args.model, "a model file (.tflite) to sign")
    protected = [
        Protected(Path(args.model), "model"),
        Protected(
            Path(args.manifest) if args.manifest else manifest_path_for(args.model),
            f"manifest of model {Path(args.model).name}",
        ),
        Protected(Path(args.key), "private key"),
    ]
    check_file_output(args.out, "--out", protected, kind="json")
    envelope = sign_model(
        args.model, args.key, manifest=args.manifest, out=args.out, passphrase=passphrase_from_env(args.passphrase_env)
    )
    if args.json:
        print_json(envelope)
        return 0
    print(
        format_table(
            [
                ["signature", envelope["path"]],
                ["key id", envelope["key_id"]],
                ["model sha256", envelope["model_sha256"]],
                ["manifest", envelope["manifest_sha256"] or "none (model signed alone)"],
            ],
            ["item", "value"],
        )
    )
    return 0
