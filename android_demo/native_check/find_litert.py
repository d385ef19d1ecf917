"""Print the directory holding libLiteRt.so from the installed ai-edge-litert wheel.

Exits 2 with a message when the wheel is missing or is not the version the
hand-written declarations in litert_c_api.h were checked against.
Usage: python find_litert.py EXPECTED_VERSION
"""
import importlib.metadata
import importlib.util
import os
import sys


def main() -> int:
    expected = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        version = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        print("error: ai-edge-litert is not installed for this Python; expected ai-edge-litert==" + expected,
              file=sys.stderr)
        return 2
    if expected and version != expected:
        print(f"error: native_check/litert_c_api.h declares the C API of ai-edge-litert {expected}, "
              f"but {version} is installed; re-check the declarations against LiteRT's litert/c headers "
              f"for {version} before changing the pin", file=sys.stderr)
        return 2
    spec = importlib.util.find_spec("ai_edge_litert")  # locate without importing the Python bindings
    directory = os.path.dirname(spec.origin) if spec and spec.origin else ""
    if not os.path.isfile(os.path.join(directory, "libLiteRt.so")):
        print(f"error: expected libLiteRt.so in {directory or 'the ai_edge_litert package'}, found none",
              file=sys.stderr)
        return 2
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
