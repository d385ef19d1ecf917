"""Mutate a .tflite file and count how LiteRT's C loader (through native_check) handles each copy.

    python android_demo/native_check/fuzz_native.py build/native_check MODEL.tflite INPUT.bin \
        [EXPECTED.bin] [--count 150] [--seed 1]

Three mutations in turn: 1-8 random bytes anywhere, truncation, 4 random bytes in the first 200
(the flatbuffer header and tables). Every copy runs with --no-verify (no manifest sha256 check),
so what stands between the bytes and LiteRT is native_check's flatbuffer verifier
(tflite_verify.c); --litert-only skips that too (--unsafe-skip-flatbuffer-check), to measure
LiteRT's own loader. The table says how many were refused by the verifier, refused by LiteRT
with a status code, crashed LiteRT (caught by native_check's child process), hung, ran and
matched, or ran with different output bytes. native_check itself must never die: any other exit
code is reported as a failure (exit 1).
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

MUTATIONS = ("bytes", "truncate", "header")


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    """One corrupted copy of ``data``."""
    out = bytearray(data)
    if kind == "bytes":
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == "truncate":
        out = out[: rng.randrange(8, len(out))]
    else:
        pos = rng.randrange(0, min(200, len(out) - 4))
        out[pos:pos + 4] = bytes(rng.randrange(256) for _ in range(4))
    return bytes(out)


def classify(run: subprocess.CompletedProcess) -> str:
    """Outcome name for one native_check run."""
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    if run.returncode == 0:
        return "ran, output matches" if report.get("compared") else "ran"
    if run.returncode == 1:
        return "ran, output differs (silent corruption)"
    if run.returncode == 2:
        error = report.get("error", "")
        if report.get("status") == "invalid_flatbuffer":
            return "refused by native_check's flatbuffer verifier"
        if "status_code" in report:
            return f"refused: {report['status']} ({report['status_code']})"
        if "crashed with signal" in error:
            return "LiteRT crashed: " + error.split("(")[1].split(")")[0]
        if "did not finish" in error:
            return "LiteRT hung (killed)"
        return "refused before LiteRT: " + error[:60]
    return f"native_check itself died (exit {run.returncode})"


def main(argv=None) -> int:
    """Run the fuzz loop and print a table of outcomes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("native_check")
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("expected", nargs="?")
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before native_check kills LiteRT")
    parser.add_argument("--litert-only", action="store_true",
                        help="skip native_check's flatbuffer verifier: measure LiteRT's own loader")
    args = parser.parse_args(argv)

    data = Path(args.model).read_bytes()
    rng = random.Random(args.seed)
    outcomes = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutant.tflite"
        for i in range(args.count):
            path.write_bytes(mutate(data, MUTATIONS[i % len(MUTATIONS)], rng))
            cmd = [args.native_check, "--json", "--no-verify", "--timeout", str(args.timeout), str(path), args.input]
            if args.litert_only:
                cmd.insert(2, "--unsafe-skip-flatbuffer-check")
            if args.expected:
                cmd.append(args.expected)
            run = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=args.timeout + 30)
            outcomes[classify(run)] += 1
    width = max(len(k) for k in outcomes)
    mode = "LiteRT only, no verifier" if args.litert_only else "verifier, then LiteRT"
    print(f"{'outcome'.ljust(width)}  count  ({args.count} mutants of {Path(args.model).name}, seed {args.seed}, {mode})")
    for name, count in outcomes.most_common():
        print(f"{name.ljust(width)}  {count:5d}")
    died = sum(c for k, c in outcomes.items() if k.startswith("native_check itself died"))
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
