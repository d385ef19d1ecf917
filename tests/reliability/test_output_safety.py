"""Issue #12 section 1: output options never destroy what edge-sdk did not write.

Each case is a reproduction from the issue (or a hostile variant of one): the
command must refuse with exit 2 and one line naming both paths, before any work,
and every input must be byte-for-byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.errors import OutputError
from edge_sdk.outputs import MARKER_FILE, check_dir_output, check_file_output, model_inputs


def _digest(path: Path) -> str:
    """sha256 of a file, or of every file under a directory (names and bytes)."""
    digest = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        digest.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


def _refused(argv, capsys, *fragments):
    """Run the CLI; assert exit 2 with one `error:` line holding every fragment; return that line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def workdir(model_copy, digits_models, tmp_path, monkeypatch):
    """A folder holding the int8 model, its manifest and input data, as the current directory."""
    model = model_copy("int8")
    shutil.copy(digits_models["x"], tmp_path / "x.npy")
    monkeypatch.chdir(tmp_path)
    return {"model": model, "manifest": model.with_suffix(".json"), "x": tmp_path / "x.npy", "dir": tmp_path}


# -- run -o ------------------------------------------------------------------------------------


def test_run_output_onto_an_existing_directory_is_refused_and_the_directory_kept(workdir, capsys):
    folder = workdir["dir"] / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "results"], capsys, "--output results is a directory")
    assert (folder / "notes.txt").read_text() == "mine"


def test_run_output_dot_is_refused_and_the_current_directory_kept(workdir, capsys):
    before = _digest(workdir["dir"])
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "."], capsys, "--output . contains the model")
    assert _digest(workdir["dir"]) == before


@pytest.mark.parametrize(
    "target,role",
    [
        ("int8.tflite", "is the model"),
        ("int8.json", "is the manifest of model int8.tflite"),
        ("int8.tflite.sig", "is the signature of model int8.tflite"),
        ("x.npy", "is the input data"),
        ("../{dir}/./int8.tflite", "is the model"),
        ("int8.json/y.npz", "lies inside the manifest"),
    ],
)
def test_run_output_onto_an_input_is_refused(workdir, capsys, target, role):
    before = _digest(workdir["dir"])
    target = target.format(dir=workdir["dir"].name)
    line = _refused(["run", "int8.tflite", "-i", "x.npy", "-o", target], capsys, f"--output {target}", role)
    assert "refusing to write over an input" in line
    assert _digest(workdir["dir"]) == before


def test_run_output_through_a_symlink_or_hard_link_to_the_model_is_refused(workdir, capsys):
    before = workdir["model"].read_bytes()
    os.symlink("int8.tflite", "link.npz")
    os.link("int8.tflite", "hard.npz")
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "link.npz"], capsys, "link.npz is the model")
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "hard.npz"], capsys, "hard.npz is the model")
    assert workdir["model"].read_bytes() == before and os.path.islink("link.npz")


def test_run_output_to_a_dangling_symlink_or_a_device_is_refused(workdir, capsys):
    os.symlink("nowhere/y.npz", "dangling.npz")
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "dangling.npz"], capsys, "dangling link")
    assert not Path("nowhere").exists()
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "/dev/full"], capsys, "character device, not a regular file")


def test_run_output_never_replaces_a_file_of_another_kind(workdir, capsys):
    Path("notes.npz").write_text("my notes, not an array archive")
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "notes.npz"], capsys, "is a text file, not a .npz file")
    assert Path("notes.npz").read_text().startswith("my notes")
    Path("old.npz").write_bytes(b"")
    Path("old.npz").chmod(0o444)
    _refused(["run", "int8.tflite", "-i", "x.npy", "-o", "old.npz"], capsys, "read-only")


def test_run_output_through_a_symlink_writes_the_target_and_keeps_the_link(workdir, capsys):
    Path("keep").mkdir()
    np.savez("keep/y.npz", old=np.zeros(1))
    os.symlink("keep/y.npz", "y.npz")
    assert main(["run", "int8.tflite", "-i", "x.npy", "-o", "y.npz"]) == 0
    assert os.path.islink("y.npz") and os.readlink("y.npz") == "keep/y.npz"
    with np.load("keep/y.npz") as saved:
        assert "old" not in saved.files and saved[saved.files[0]].shape == (100, 10)
    assert [p.name for p in Path("keep").iterdir()] == ["y.npz"]  # no temporary left beside the target
    assert not [p for p in workdir["dir"].iterdir() if p.name.startswith(".")]


def test_run_output_whose_parent_is_a_file_is_refused_before_the_model_runs(workdir, capsys, monkeypatch):
    import edge_sdk

    monkeypatch.setattr(edge_sdk, "load", lambda *a, **k: pytest.fail("the model ran before the output was checked"))
    Path("notes.txt").write_text("x")
    _refused(
        ["run", "int8.tflite", "-i", "x.npy", "-o", "notes.txt/y.npz"], capsys, "notes.txt is a file, not a directory"
    )


# -- sign, bench, parity, keygen -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["int8.tflite", "int8.json"])
def test_sign_out_onto_the_model_or_its_manifest_is_refused(workdir, keypair, capsys, target):
    before = _digest(workdir["dir"])
    _refused(["sign", "int8.tflite", "--key", keypair["key"], "--out", target], capsys, f"--out {target} is the")
    assert _digest(workdir["dir"]) == before


def test_sign_out_onto_the_private_key_is_refused(workdir, keypair, capsys, tmp_path):
    key = tmp_path / "k.key"
    shutil.copy(keypair["key"], key)
    _refused(["sign", "int8.tflite", "--key", key, "--out", key], capsys, "is the private key")


def test_bench_json_onto_the_model_is_refused(workdir, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse: the name must end in .json
        main(["bench", "int8.tflite", "--json", "int8.tflite"])
    assert exit_info.value.code == 2 and "expected a file name ending in .json" in capsys.readouterr().err
    _refused(["bench", "int8.tflite", "--json", "int8.json"], capsys, "--json int8.json is the manifest")
    _refused(["bench", "int8.tflite", "--json", "r.json", "--png", "r.json"], capsys, "also the --json output")
    assert workdir["model"].read_bytes()[4:8] == b"TFL3"


def test_bench_unwritable_json_fails_before_measuring(workdir, capsys, monkeypatch):
    import edge_sdk.bench

    monkeypatch.setattr(edge_sdk.bench, "run_benchmark", lambda *a, **k: pytest.fail("measured before checking --json"))
    Path("notes.txt").write_text("x")
    _refused(["bench", "int8.tflite", "--json", "notes.txt/r.json"], capsys, "notes.txt is a file, not a directory")
    if os.access("/sys", os.W_OK) and not _can_create_in("/sys"):  # read-only to everyone, root included
        _refused(["bench", "int8.tflite", "--json", "/sys/edge-sdk-r.json"], capsys, "cannot write in /sys")


def _can_create_in(directory: str) -> bool:
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_bench_json_in_a_read_only_directory_fails_before_measuring(workdir, capsys):
    Path("ro").mkdir()
    Path("ro").chmod(0o555)
    try:
        _refused(["bench", "int8.tflite", "--json", "ro/r.json"], capsys, "cannot write in", "Permission denied")
    finally:
        Path("ro").chmod(0o755)


def test_bench_json_on_a_full_disk_fails_before_measuring(workdir, capsys, monkeypatch):
    """ENOSPC from the probe's first byte: the same error a full disk gives, before minutes of timing."""
    import errno

    import edge_sdk.bench

    monkeypatch.setattr(edge_sdk.bench, "run_benchmark", lambda *a, **k: pytest.fail("measured before checking --json"))
    real_write = os.write

    def full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(workdir["dir"])):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    _refused(["bench", "int8.tflite", "--json", "r.json"], capsys, "--json r.json", "No space left on device")


def test_bench_compare_json_onto_a_results_file_is_refused(workdir, capsys):
    Path("a.json").write_text("{}")
    _refused(["bench", "compare", "a.json", "--json", "a.json"], capsys, "is the results file")
    assert Path("a.json").read_text() == "{}"


def test_parity_write_reference_onto_the_savedmodel_is_refused(tmp_path, capsys, monkeypatch):
    saved = tmp_path / "savedmodel"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01model")
    before = _digest(saved)
    monkeypatch.chdir(tmp_path)
    _refused(
        ["parity", "savedmodel", "--data", "digits", "--write-reference", "savedmodel"],
        capsys,
        "--write-reference savedmodel is the float model",
    )
    _refused(
        ["parity", "savedmodel", "--data", "digits", "--write-reference", "savedmodel/g.npz"],
        capsys,
        "lies inside the float model",
    )
    assert _digest(saved) == before


def test_parity_json_does_not_swallow_a_model_path(workdir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["parity", "--json", "int8.tflite", "int8.tflite", "--data", "x.npy"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--json=FILE.json" in err
    assert workdir["model"].read_bytes()[4:8] == b"TFL3"


def test_parity_outputs_are_checked_against_each_other_and_the_autotune_manifest(workdir, capsys):
    _refused(
        ["parity", "a", "int8.tflite", "--data", "x.npy", "--json", "r.json", "--html", "r.json"],
        capsys,
        "also the --json output",
    )
    _refused(
        ["parity", "a", "int8.tflite", "--data", "x.npy", "--accuracy-budget", "1", "--autotune-out", "int8.tflite"],
        capsys,
        "--autotune-out int8.tflite is the model",
    )


def test_keygen_into_a_file_or_over_a_directory_is_refused(tmp_path, capsys):
    pytest.importorskip("cryptography")
    (tmp_path / "plain").write_text("x")
    _refused(["keygen", "--out-dir", tmp_path / "plain"], capsys, "is a file, not a directory")
    (tmp_path / "edge-sdk.key").mkdir()
    _refused(["keygen", "--out-dir", tmp_path, "--force"], capsys, "is a directory")
    assert not (tmp_path / "edge-sdk.pub").exists()  # refused before any key was written


# -- directory outputs: convert, train, demo ------------------------------------------------------------


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Fail the test if a command gets as far as importing TensorFlow: refusals come first."""
    import edge_sdk.cli._common as common

    def forbidden(command):
        pytest.fail(f"{command} reached TensorFlow before refusing")

    for module in ("convert", "train", "demo", "parity"):
        monkeypatch.setattr(f"edge_sdk.cli.{module}.require_convert_stack", forbidden)
    return common


def test_convert_out_holding_the_input_model_and_other_files_is_refused(tmp_path, capsys, monkeypatch, no_tensorflow):
    work = tmp_path / "w"
    work.mkdir()
    (work / "model.keras").write_bytes(b"PK\x03\x04 keras")
    (work / "notes.txt").write_text("unrelated")
    before = _digest(work)
    monkeypatch.chdir(tmp_path)
    _refused(
        ["convert", "w/model.keras", "--recipe", "int8", "--dataset", "digits", "--out", "w"],
        capsys,
        "--out w contains the input model (w/model.keras)",
    )
    _refused(
        ["convert", "w/model.keras", "--recipe", "int8", "--dataset", "digits", "--out", "w", "--force"],
        capsys,
        "contains the input model",
    )  # --force never deletes an input
    assert _digest(work) == before


def test_convert_out_equal_to_or_inside_the_savedmodel_is_refused(tmp_path, capsys, monkeypatch, no_tensorflow):
    saved = tmp_path / "sm"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    monkeypatch.chdir(tmp_path)
    _refused(["convert", "sm", "--recipe", "int8", "--out", "sm"], capsys, "--out sm is the input model")
    _refused(["convert", "sm", "--recipe", "int8", "--out", "sm/variables"], capsys, "lies inside the input model")
    _refused(
        ["convert", "sm", "--recipe", "int8", "--out", "x", "--calibration", "sm/variables"],
        capsys,
        "--calibration sm/variables is a directory",
    )


def test_convert_out_of_someone_else_is_refused_unless_force(tmp_path, capsys, monkeypatch, no_tensorflow):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("unrelated")
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04")
    monkeypatch.chdir(tmp_path)
    _refused(
        ["convert", "m.keras", "--recipe", "int8", "--out", "mine"],
        capsys,
        "non-empty directory edge-sdk did not write",
        "notes.txt",
        "--force",
    )
    args = ["m.keras", "--recipe", "int8", "--out", "mine", "--force"]
    with pytest.raises(pytest.fail.Exception, match="reached TensorFlow"):  # --force passes the check
        main(["convert", *args])


def test_convert_replaces_its_own_output_but_not_files_added_to_it(tmp_path, capsys, monkeypatch):
    from edge_sdk.outputs import mark_output_dir

    out = tmp_path / "out"
    out.mkdir()
    (out / "int8.tflite").write_bytes(b"x")
    mark_output_dir(out, "convert", record_entries=True)
    assert check_dir_output(out, "--out") == out  # edge-sdk's own folder: may be replaced
    (out / "notes.txt").write_text("added by a person")
    with pytest.raises(OutputError, match=r"holds 1 entry edge-sdk did not write \(notes.txt\)"):
        check_dir_output(out, "--out")
    assert check_dir_output(out, "--out", force=True) == out
    killed = tmp_path / "killed"  # a train.fit killed mid-way, started without the CLI: backup/run.json says whose
    (killed / "backup").mkdir(parents=True)
    (killed / "backup" / "run.json").write_text(json.dumps({"model": "cnn", "dataset": "digits"}))
    assert check_dir_output(killed, "--out", replace=False) == killed
    legacy = tmp_path / "legacy"  # written before the marker existed: its summary.json says whose it is
    legacy.mkdir()
    (legacy / "summary.json").write_text(json.dumps({"recipe": {}, "artifacts": []}))
    assert check_dir_output(legacy, "--out") == legacy


def test_the_current_directory_and_its_ancestors_are_never_replaced(tmp_path, monkeypatch):
    from edge_sdk.outputs import mark_output_dir

    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    mark_output_dir(tmp_path / "a", "convert")
    monkeypatch.chdir(inner)
    (inner / "f").write_text("x")
    for target in (".", "..", str(tmp_path / "a")):
        with pytest.raises(OutputError, match="current directory"):
            check_dir_output(target, "--out", force=True)
    # train and demo write into a folder rather than replace it: the current directory is fine for them
    assert check_dir_output(".", "--out", force=True, replace=False).resolve() == inner.resolve()


def test_convert_zoo_name_that_is_also_a_local_folder_is_refused(tmp_path, capsys, monkeypatch, no_tensorflow):
    (tmp_path / "cnn").mkdir()
    monkeypatch.chdir(tmp_path)
    _refused(
        ["convert", "cnn", "--dataset", "digits", "--recipe", "int8", "--out", "o"],
        capsys,
        "MODEL 'cnn' is ambiguous",
        "./cnn",
    )
    (tmp_path / "digits").mkdir()
    _refused(
        ["convert", "./cnn", "--dataset", "digits", "--recipe", "int8", "--out", "o"],
        capsys,
        "--dataset 'digits' is ambiguous",
    )


def test_train_out_refusals_come_before_tensorflow(tmp_path, capsys, monkeypatch, no_tensorflow):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    _refused(
        ["train", "--model", "wide-deep", "--dataset", "table.csv", "--epochs", "1", "--out", "table.csv"],
        capsys,
        "--out table.csv is the --dataset",
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    _refused(
        ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "1", "--out", "mine"],
        capsys,
        "non-empty directory edge-sdk did not write",
    )


def test_demo_bad_options_fail_at_once(tmp_path, capsys, monkeypatch, no_tensorflow):
    monkeypatch.setattr("edge_sdk.cli.demo._step", lambda *a: pytest.fail("the demo started before checking"))
    _refused(["demo", "--out", tmp_path / "d", "--threads", "0"], capsys, "--threads", ">= 1")
    _refused(["demo", "--out", tmp_path / "d", "--epochs", "0"], capsys, "--epochs must be at least 1")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    _refused(["demo", "--out", tmp_path / "mine"], capsys, "non-empty directory edge-sdk did not write")


def test_model_inputs_lists_the_companions():
    roles = {p.path.name: p.role for p in model_inputs("d/m.tflite")}
    assert roles == {
        "m.tflite": "model",
        "m.json": "manifest of model m.tflite",
        "m.tflite.sig": "signature of model m.tflite",
    }
    assert [p.path.name for p in model_inputs("d/savedmodel")] == ["savedmodel", "savedmodel.json"]


def test_check_file_output_of_stdout_checks_nothing(tmp_path):
    assert check_file_output("-", "--json", allow_stdout=True) is None
    assert check_file_output(None, "--json") is None
    assert check_file_output(tmp_path / "new" / "r.json", "--json") == tmp_path / "new" / "r.json"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert not list(tmp_path.iterdir())
    assert MARKER_FILE.startswith(".")


def test_a_json_output_never_replaces_the_manifest_of_a_model_that_is_not_an_input(workdir, capsys):
    """`data stats X --out model.json` (or another command's --json) replaced a model's manifest: the model then
    failed to load ('manifest lacks required field(s)'). A manifest is only replaced by a manifest."""
    before = workdir["manifest"].read_bytes()
    np.savez(workdir["dir"] / "d.npz", x=np.load(workdir["x"]))
    _refused(["data", "stats", "d.npz", "--out", "int8.json"], capsys, "--out int8.json", "manifest")
    _refused(["data", "stats", "d.npz", "--json", "int8.json"], capsys, "--json int8.json", "manifest")
    assert workdir["manifest"].read_bytes() == before
