"""Golden references: written with TensorFlow, checked with only numpy + the LiteRT runtime."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.manifest import build_manifest, manifest_path_for, write_manifest
from edge_sdk.reference import (
    GoldenReferenceError,
    GoldenReferenceMismatchError,
    check_reference,
    model_sha256,
    read_reference,
)

ROOT = Path(__file__).resolve().parents[2]
# runs the CLI in a fresh interpreter where TensorFlow and friends cannot be imported at all
LIGHT = (
    "import sys\n"
    "for name in ('tensorflow', 'tf_keras', 'keras', 'tensorflow_model_optimization', 'onnx', 'onnxruntime',"
    " 'tf2onnx', 'converters', 'training'):\n"
    "    sys.modules[name] = None\n"
    "from edge_sdk.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "leaked = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras') and sys.modules[m]]\n"
    "print('LEAKED', leaked) if leaked else None\n"
    "sys.exit(code)\n"
)


def light_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", LIGHT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )


@pytest.fixture(scope="module")
def golden(digits, tmp_path_factory):
    """A reference from the normal float model, storing the int8 model's build-machine outputs too."""
    art = digits["normal"]
    path = tmp_path_factory.mktemp("golden") / "golden.npz"
    code = main(
        [
            "parity",
            "--write-reference",
            str(path),
            str(art["keras"]),
            str(art["int8"]),
            "--data",
            str(art["test"]),
            "--samples",
            "64",
            "-q",
        ]
    )
    assert code == 0
    return path


def test_reference_file_contents(golden, digits):
    ref = read_reference(golden)
    assert ref.samples == 64
    assert ref.meta["float_sha256"] == model_sha256(digits["normal"]["keras"])
    assert ref.meta["quantized_sha256"] == model_sha256(digits["normal"]["int8"])
    assert list(ref.inputs) == ["image"] and ref.inputs["image"].shape == (64, 8, 8, 1)
    assert ref.float_outputs["probs"].shape == (64, 10) and ref.labels.shape == (64,)
    np.testing.assert_allclose(ref.float_outputs["probs"].sum(axis=1), 1.0, atol=1e-5)


def test_device_check_passes_with_the_light_runtime_only(golden, digits):
    proc = light_cli("parity", "--reference", golden, digits["normal"]["int8"], "--min-agreement", "0.95")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LEAKED" not in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("PASS:") and "max_steps probs: 0 <= 1" in last
    assert "verified (the reference stores this model's outputs)" in proc.stdout


def test_light_check_json(golden, digits, tmp_path):
    out = tmp_path / "check.json"
    proc = light_cli(
        "parity", "--reference", golden, digits["normal"]["int8"], "--min-agreement", "0.95", "--json", out
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["status"] == "pass" and result["samples"] == 64
    assert result["outputs"][0]["top1_agreement"] > 0.95 and result["outputs"][0]["build_max_steps"] <= 1
    assert result["accuracy"] > 0.9


def test_a_degraded_model_fails_the_check(digits, tmp_path):
    """The outlier model's int8 file against its own float reference: agreement far below 0.99."""
    art = digits["outlier"]
    ref = tmp_path / "outlier.npz"
    assert main(["parity", "--write-reference", str(ref), str(art["keras"]), "--data", str(art["test"]), "-q"]) == 0
    result = check_reference(ref, art["int8"])
    assert result["status"] == "fail" and result["exit_code"] == 1
    assert result["verdict"].startswith("FAIL") and "min_agreement" in result["verdict"]
    assert result["lineage"].startswith("unknown")


def test_reference_from_a_different_model_is_refused(golden, digits, tmp_path):
    """The outlier int8 file with a manifest naming its own float parent: not the reference's float model."""
    art = digits["outlier"]
    model = tmp_path / "model_int8.tflite"
    shutil.copy(art["int8"], model)
    data = model.read_bytes()
    write_manifest(
        build_manifest(data, model.name, kind="int8", stage="quantize", parent_sha256=model_sha256(art["keras"])),
        manifest_path_for(model),
    )
    with pytest.raises(GoldenReferenceMismatchError) as info:
        check_reference(golden, model)
    assert "different model" in str(info.value)
    proc = light_cli("parity", "--reference", golden, model)
    assert proc.returncode == 2 and "error: " in proc.stderr and "different model" in proc.stderr


def test_manifest_chain_naming_the_float_model_is_verified(golden, digits, tmp_path):
    art = digits["normal"]
    model = tmp_path / "int8.tflite"
    shutil.copy(art["int8"], model)
    # a copy with a manifest whose parent is the float model: lineage checked through parent_sha256
    write_manifest(
        build_manifest(
            model.read_bytes(), model.name, kind="int8", stage="quantize", parent_sha256=model_sha256(art["keras"])
        ),
        manifest_path_for(model),
    )
    ref = read_reference(golden)
    ref.meta["quantized_sha256"] = None
    result = check_reference(ref, model, min_agreement=0.95)
    assert result["lineage"].startswith("verified (the manifest chain")
    assert result["status"] == "pass"


def test_reference_with_other_signature_is_refused(golden, other_signature_tflite):
    with pytest.raises(Exception) as info:
        check_reference(golden, other_signature_tflite)
    assert "input" in str(info.value) and "image" in str(info.value)


def test_edited_reference_is_detected(golden, tmp_path):
    with np.load(golden) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["input_0"] = arrays["input_0"] + 0.5
    edited = tmp_path / "edited.npz"
    np.savez(edited, **arrays)
    with pytest.raises(GoldenReferenceError, match="do not match their sha256"):
        read_reference(edited)
    not_npz = tmp_path / "x.npz"
    not_npz.write_text("hello")
    with pytest.raises(GoldenReferenceError, match="not a readable .npz"):
        read_reference(not_npz)


def _small_reference(path, quantized=True):
    """A reference written from plain arrays (no model needed to test the file's own integrity)."""
    from edge_sdk.reference import write_reference

    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1), dtype=np.float32)
    probs = rng.random((6, 10)).astype(np.float32)
    write_reference(
        path,
        {"image": x},
        {"probs": probs},
        float_model="float.keras",
        float_sha256s=["a" * 64],
        labels=np.arange(6) % 10,
        quantized_outputs={"probs": probs + 0.01} if quantized else None,
        quantized_sha256="b" * 64 if quantized else None,
    )
    return path


def _rewrite(src, dst, **changes):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    for key, change in changes.items():
        arrays[key] = change(arrays[key])
    np.savez(dst, **arrays)
    return dst


def _edit_meta(key, value):
    def change(meta_array):
        meta = json.loads(str(meta_array))
        meta[key] = value
        return np.array(json.dumps(meta))

    return change


@pytest.mark.parametrize(
    "array,change,blamed",
    [
        ("float_0", lambda a: a + np.float32(0.25), "stored float model outputs"),
        ("quantized_0", lambda a: a[::-1].copy(), "stored quantized model outputs"),
        ("labels", lambda a: (a + 1) % 10, "stored labels"),
        ("input_0", lambda a: a * 0, "stored inputs"),
        ("meta", _edit_meta("quantized_sha256", "c" * 64), "metadata"),
    ],
)
def test_any_corrupted_part_of_a_reference_is_blamed_on_the_reference(tmp_path, array, change, blamed):
    good = _small_reference(tmp_path / "good.npz")
    assert read_reference(good).samples == 6
    bad = _rewrite(good, tmp_path / "bad.npz", **{array: change})
    with pytest.raises(
        GoldenReferenceError, match=f"the {blamed}.*do not match their sha256.*reference file is corrupt"
    ) as info:
        read_reference(bad)
    assert str(bad) in str(info.value)


def test_a_corrupted_stored_output_stops_the_check_before_the_model_is_blamed(golden, digits, tmp_path):
    """Before, a damaged float output made a good model FAIL its agreement check; now the reference is refused."""
    bad = _rewrite(golden, tmp_path / "bad.npz", float_0=lambda a: a[:, ::-1].copy())
    with pytest.raises(GoldenReferenceError, match="stored float model outputs do not match"):
        check_reference(bad, digits["normal"]["int8"], min_agreement=0.95)
    proc = light_cli("parity", "--reference", bad, digits["normal"]["int8"])
    assert proc.returncode == 2 and "stored float model outputs do not match" in proc.stderr
    assert check_reference(golden, digits["normal"]["int8"], min_agreement=0.95)["status"] == "pass"


def test_a_reference_in_the_old_format_asks_to_be_written_again(tmp_path):
    good = _small_reference(tmp_path / "good.npz", quantized=False)

    def as_version_1(meta_array):
        meta = json.loads(str(meta_array))
        meta["format"] = "edge-sdk-reference/1"
        del meta["integrity"]
        return np.array(json.dumps(meta))

    old = _rewrite(good, tmp_path / "old.npz", meta=as_version_1)
    with pytest.raises(
        GoldenReferenceError,
        match=r"older edge-sdk \(format 'edge-sdk-reference/1'\).*covers only "
        r"the inputs.*write the reference again with: edge-sdk parity "
        r"--write-reference",
    ):
        read_reference(old)


def test_string_or_complex_labels_are_refused_in_one_line():
    """`parity --labels names.npy` with strings ended in 'unexpected ValueError ... (an edge-sdk bug)'."""
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.reference import labels_to_classes

    for bad in (np.array(["cat", "dog"]), np.array([1 + 2j, 3j]), np.array([b"a", b"b"])):
        with pytest.raises(EdgeSdkError, match=f"expected integer class ids.*got dtype {bad.dtype}"):
            labels_to_classes(bad)
    assert labels_to_classes(np.array([True, False])).tolist() == [1, 0]
