"""``edge-sdk verify MODEL [--public-key PUB]``: check a model against its manifest and signature.

Works with the light runtime (numpy + LiteRT); the signature check needs the
``sign`` extra (cryptography). Checks: the file is a model the interpreter
loads (in a child process, so a hostile file cannot crash the check), its
sha256 matches the manifest and the manifest's declared inputs, outputs,
quantization, size and labels are the model's, and with a key its signature
verifies for this file name. Exit 0 when every check passes and at least the
manifest or the signature was checked, 1 when a check fails (altered,
contradicted, unsigned, wrong key, renamed, not a model) or there was nothing
to check against, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge_sdk.console import print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` subcommand."""
    parser = subparsers.add_parser(
        "verify",
        help="check a model's sha256 against its manifest and, with --public-key, its Ed25519 signature",
        description="Checks: the file is a TFLite model the interpreter loads; its sha256 equals the "
        "manifest's (when a manifest is beside it or given); with --public-key, MODEL.sig verifies and covers "
        "exactly this model and manifest. Exit 0 all passed (and the manifest or the signature was checked), "
        "1 a check failed or there was nothing to check against, 2 could not run.",
    )
    parser.add_argument("model", help="path to the model file (.tflite)")
    parser.add_argument("--public-key", "-p", help="Ed25519 public key (NAME.pub, PEM or raw 32 bytes)")
    parser.add_argument("--manifest", help="manifest to check against (default: the one beside the model)")
    parser.add_argument("--signature", "-s", help="signature file (default: MODEL.sig)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the checks and print a table (or JSON); return 0 or 1."""
    from pathlib import Path

    from edge_sdk.cli._common import require_model_file
    from edge_sdk.console import require_extra
    from edge_sdk.errors import EdgeSdkError, IntegrityError, ManifestError, SignatureError
    from edge_sdk.fileio import sha256_bytes
    from edge_sdk.loader import load
    from edge_sdk.manifest import find_manifest, manifest_contradictions, read_manifest
    from edge_sdk.report import format_table

    path = Path(args.model)
    require_model_file(args.model)
    data = path.read_bytes()
    actual = sha256_bytes(data)
    manifest_path = Path(args.manifest) if args.manifest else find_manifest(path)
    checks: list[dict[str, Any]] = []
    model = None
    try:
        # the sha256 checks come next; this one asks whether the bytes are a model at all
        model = load(data, verify=False, isolate=True)
        checks.append(
            {
                "check": "model",
                "ok": True,
                "detail": f"loads: {len(model.inputs)} input(s), {len(model.outputs)} output(s), {len(data):,} bytes",
            }
        )
    except EdgeSdkError as exc:
        checks.append({"check": "model", "ok": False, "detail": str(exc)})
    manifest = None
    if manifest_path is None:
        checks.append({"check": "manifest", "ok": None, "detail": "no manifest beside the model; sha256 not checked"})
    else:
        manifest = read_manifest(manifest_path)  # ManifestError (exit 2) when unusable
        expected = manifest.get("sha256")
        ok = expected == actual
        detail = (
            f"sha256 {actual[:16]}... matches {manifest_path.name}"
            if ok
            else str(IntegrityError(f"expected sha256 {expected} from {manifest_path}, got {actual}"))
        )
        if ok and model is not None:
            contradictions = manifest_contradictions(manifest, model.inputs, model.outputs, len(data))
            if contradictions:
                ok = False
                detail = f"{manifest_path.name} contradicts the model: " + "; ".join(contradictions)
            else:
                detail += "; inputs, outputs, size and labels agree"
        checks.append({"check": "manifest", "ok": ok, "detail": detail})
    if args.public_key:
        require_extra("sign", "verify --public-key")
        from edge_sdk.signing import load_public_key, verify_model

        key = load_public_key(args.public_key)  # a bad key file is an input error: exit 2
        try:
            report = verify_model(
                data, path, manifest if manifest is not None else args.manifest, key, signature=args.signature
            )
            checks.append(
                {
                    "check": "signature",
                    "ok": True,
                    "detail": f"Ed25519 key {report['key_id']}, signed {report['signed_at']}, covers "
                    + ("model + manifest" if report["manifest_sha256"] else "model only"),
                }
            )
        except (SignatureError, ManifestError) as exc:
            checks.append({"check": "signature", "ok": False, "detail": str(exc)})
    else:
        checks.append({"check": "signature", "ok": None, "detail": "not checked (pass --public-key PUB)"})
    failed = any(c["ok"] is False for c in checks)
    checked = any(c["ok"] for c in checks if c["check"] in ("manifest", "signature"))
    passed = checked and not failed
    verdict = (
        "verified"
        if passed
        else "NOT verified"
        if failed
        else "NOT verified: nothing to check the sha256 against (no manifest beside the model, no --public-key)"
    )
    if args.json:
        print_json({"model": str(path), "sha256": actual, "ok": passed, "verdict": verdict, "checks": checks})
    else:
        mark = {True: "ok", False: "FAILED", None: "skipped"}
        print(format_table([[c["check"], mark[c["ok"]], c["detail"]] for c in checks], ["check", "result", "detail"]))
        print(verdict)
    return 0 if passed else 1
