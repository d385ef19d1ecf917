"""The light-runtime guarantee: edge_sdk works where TensorFlow cannot be imported.

A child process installs an import hook that makes tensorflow, keras, tf_keras,
tensorflow_model_optimization, tf2onnx, onnx and onnxruntime fail to import,
then imports edge_sdk, loads and runs a model, and runs the CLI. Adding a heavy
import anywhere on those paths turns this test red.
"""

import json
import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "tf2onnx",
               "onnx", "onnxruntime")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: this is a light-runtime device")
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_blocked(body: str, timeout: int = 120) -> subprocess.CompletedProcess:
    script = BLOCKER + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)


def test_import_load_predict_without_tensorflow(runtime_models):
    result = run_blocked(f"""
        import numpy as np
        import edge_sdk
        model = edge_sdk.load({str(runtime_models["int8"])!r})
        y = model.predict(np.load({str(runtime_models["x"])!r}))
        assert y.shape == (32, 10), y.shape
        heavy = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not heavy, heavy
        print("ok", model.backend)
    """)
    assert result.returncode == 0, result.stderr
    assert "ok litert" in result.stdout


def test_cli_inspect_run_help_without_tensorflow(runtime_models, tmp_path):
    out = tmp_path / "y.npz"
    result = run_blocked(f"""
        import json
        from edge_sdk.cli import main
        assert main(["inspect", {str(runtime_models["int8"])!r}, "--json"]) == 0
        assert main(["run", {str(runtime_models["int8"])!r}, "--input", {str(runtime_models["x"])!r},
                     "--output", {str(out)!r}]) == 0
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        heavy = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not heavy, heavy
    """)
    assert result.returncode == 0, result.stderr
    report, _ = json.JSONDecoder().raw_decode(result.stdout)
    assert report["kind"] == "full-integer"
    assert out.is_file()


@pytest.mark.parametrize("command", ["train", "convert"])
def test_heavy_commands_name_the_extra(command):
    from edge_sdk.cli import build_parser

    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    if command not in subcommands:
        pytest.skip(f"edge-sdk {command} is not registered")
    result = run_blocked(f"""
        from edge_sdk.cli import main
        code = main([{command!r}, "--help"])
    """)
    assert result.returncode == 0, result.stderr  # --help must not need TensorFlow either
    result = run_blocked(f"""
        from edge_sdk.cli import main
        sys.exit(main([{command!r}] + {_minimal_args(command)!r}))
    """)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "pip install 'edge-sdk[convert]'" in result.stderr


def _minimal_args(command):
    return {
        "train": ["--model", "cnn", "--dataset", "digits", "--epochs", "1", "--out", "/tmp/edge-sdk-unused"],
        "convert": ["cnn", "--recipe", "int8", "--out", "/tmp/edge-sdk-unused"],
    }[command]


def test_import_is_light():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, edge_sdk; print(sorted(m for m in sys.modules if m.startswith(('numpy', 'ai_edge'))))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # numpy and the interpreter load on first use, not on import


NO_CONVERTERS = textwrap.dedent("""
    class NoPackage:  # a runtime-only install: the wheel's converters and training packages are absent
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("converters", "training"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoPackage())
""")


def test_parity_task_flags_without_converters(tmp_path, capsys, monkeypatch):
    """`parity --help` lists the same task-budget flags on a runtime-only install (they lived in
    converters.recipe, so a device lost --task, --min-iou ... with it), and their range is still checked."""
    from edge_sdk.cli import main

    monkeypatch.setenv("COLUMNS", "100")  # one help width here and in the child, terminal or not

    with pytest.raises(SystemExit):
        main(["parity", "--help"])
    full = capsys.readouterr().out
    flags = ["--task", "--min-correlation", "--min-recall", "--min-iou", "--min-cosine", "--min-snr-db", "--head"]
    assert all(f"{flag} " in full for flag in flags)
    result = run_blocked(
        NO_CONVERTERS
        + textwrap.dedent(f"""
        from edge_sdk.cli import main
        try:
            main(["parity", "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        code = main(["parity", "--reference", {str(tmp_path / "g.npz")!r}, "m.tflite", "--min-iou", "1.5"])
        heavy = [m for m in sys.modules if m.split(".")[0] in BLOCKED + ("converters", "training")]
        assert not heavy, heavy
        sys.exit(code)
    """)
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    task_part = result.stdout[result.stdout.index("\ntask (") :]
    assert task_part == full[full.index("\ntask (") :]  # the same flags, help and defaults with or without converters
    assert "error: --min-iou: must be between 0 and 1, got 1.5" in result.stderr
