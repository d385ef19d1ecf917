"""Loading a model never runs Python code stored in it unless the caller trusts it (issue #12, section 2).

Each "evil" model has a Lambda layer whose stored bytecode appends to a marker file
when it runs. tf_keras 2.21 runs that bytecode while it loads an .h5 file or a Keras
SavedModel even with ``safe_mode=True``; the loader must refuse (or, for a
SavedModel, use the traced serving signature) without the marker ever appearing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from converters import model_files
from converters.errors import StageNotApplicableError

ROOT = Path(__file__).resolve().parents[2]

# Built in a child process: building a functional model calls the Lambda (writing the marker),
# and Keras 3 and tf_keras models are both made there with the real savers.
_BUILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import converters._tf  # noqa: F401  (TF_USE_LEGACY_KERAS and the import order)
    import keras
    import tf_keras
    root, marker = Path(sys.argv[1]), sys.argv[2]
    # a real lambda, so its bytecode (with the marker path as a constant) is what the file stores
    evil = eval("lambda x: (open(%r, 'a').write('ran\\\\n'), x)[1]" % marker)

    inputs = tf_keras.Input((4,), name="x")
    hidden = tf_keras.layers.Lambda(evil, name="sneaky")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3, name="out")(hidden))
    model.save(root / "tfk.h5")
    model.save(root / "tfk.keras")
    model.save(root / "tfk_savedmodel")

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Lambda(evil, name="sneaky3")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
    model.save(root / "k3.keras")
    model.save(root / "k3.h5")
""")


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """Paths of evil models (tf_keras .h5/.keras/SavedModel, Keras 3 .keras/.h5) and their marker file."""
    root = tmp_path_factory.mktemp("evil")
    marker = root / "MARKER"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", _BUILD, str(root), str(marker)], check=True, env=env, capture_output=True, timeout=600
    )
    assert marker.exists(), "the Lambda should have run while the models were built"
    marker.unlink()

    class Evil:
        pass

    found = Evil()
    found.root, found.marker = root, marker
    return found


@pytest.mark.parametrize(
    "name, layer", [("tfk.h5", "sneaky"), ("tfk.keras", "sneaky"), ("k3.keras", "sneaky3"), ("k3.h5", "sneaky3")]
)
def test_stored_code_is_refused_by_default_naming_the_layer_and_the_flag(evil, name, layer):
    with pytest.raises(model_files.UntrustedModelCodeError) as err:
        model_files.load(evil.root / name)
    message = str(err.value)
    assert f"Lambda layer '{layer}'" in message and "--trust-model-code" in message
    assert "trust_model_code=True" in message and str(evil.root / name) in message
    assert "\n" not in message
    assert not evil.marker.exists()


def test_keras_savedmodel_with_stored_code_loads_its_graph_not_its_layers(evil):
    model = model_files.load(evil.root / "tfk_savedmodel")
    assert model.kind == model_files.KIND_SAVEDMODEL
    assert model.predict({"x": np.ones((2, 4), np.float32)}).shape == (2, 3)
    assert not evil.marker.exists()  # the traced graph ran; the stored bytecode did not
    with pytest.raises(StageNotApplicableError) as err:
        model.require("prune", "prune")
    assert "Lambda layer 'sneaky'" in str(err.value) and "--trust-model-code" in str(err.value)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("tfk.h5", model_files.KIND_TF_KERAS),
        ("tfk.keras", model_files.KIND_TF_KERAS),
        ("tfk_savedmodel", model_files.KIND_TF_KERAS),
        ("k3.keras", model_files.KIND_KERAS3),
    ],
)
def test_trusted_it_loads_and_the_stored_code_runs(evil, name, kind):
    evil.marker.unlink(missing_ok=True)
    model = model_files.load(evil.root / name, trust_model_code=True)
    assert model.kind == kind
    model.predict({model.input_names[0]: np.ones((2, 4), np.float32)})
    assert evil.marker.exists()  # the trust decision really is a decision to run the file's code
    evil.marker.unlink()


def test_trust_can_be_set_for_a_block_and_an_explicit_argument_wins(evil):
    with model_files.trusted_model_code():
        assert model_files.load(evil.root / "tfk.keras").kind == model_files.KIND_TF_KERAS
        with pytest.raises(model_files.UntrustedModelCodeError):
            model_files.load(evil.root / "tfk.h5", trust_model_code=False)
    with pytest.raises(model_files.UntrustedModelCodeError):
        model_files.load(evil.root / "tfk.h5")
    evil.marker.unlink(missing_ok=True)


def test_config_scan_finds_code_in_nested_models_and_lambda_activations():
    nested = {
        "class_name": "Functional",
        "config": {
            "name": "outer",
            "layers": [
                {
                    "class_name": "Sequential",
                    "config": {
                        "name": "inner",
                        "layers": [
                            {
                                "class_name": "TimeDistributed",
                                "config": {
                                    "name": "td",
                                    "layer": {
                                        "class_name": "Lambda",
                                        "config": {
                                            "name": "deep",
                                            "function": ["YWJj", None, None],
                                            "function_type": "lambda",
                                        },
                                    },
                                },
                            }
                        ],
                    },
                },
                {
                    "class_name": "Dense",
                    "config": {"name": "head", "activation": {"class_name": "__lambda__", "config": {"code": "YWJj"}}},
                },
                {"class_name": "TFOpLambda", "config": {"name": "add", "function": "math.add"}},
            ],
        },
    }
    found = model_files.stored_code(nested)
    assert found == ["Lambda layer 'deep' holds Python bytecode", "'head' holds a Python lambda's bytecode"]
    assert (
        model_files.stored_code(
            {
                "class_name": "Sequential",
                "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "activation": "relu"}}]},
            }
        )
        == []
    )


def test_ordinary_models_still_load(digits_models):
    for path in (digits_models.teacher_h5, digits_models.teacher_keras, digits_models.teacher_savedmodel):
        assert model_files.load(path).kind == model_files.KIND_TF_KERAS
    assert model_files.load(digits_models.keras3).kind == model_files.KIND_KERAS3


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", *args], capture_output=True, text=True, env=env, timeout=900
    )


@pytest.mark.slow
def test_cli_convert_refuses_then_converts_with_the_flag(evil, tmp_path, capsys):
    from edge_sdk.cli import main

    out = tmp_path / "o"
    # the refusal through the CLI's main() in this process (an escaping exception would fail the test, as a
    # traceback on stderr would): it must not run the stored code, here or anywhere, so the marker stays absent
    code = main(["convert", str(evil.root / "tfk.h5"), "--recipe", "dynamic", "--out", str(out), "-q"])
    refused = capsys.readouterr()
    assert code == 2, refused.err
    last = refused.err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Lambda layer 'sneaky'" in last and "--trust-model-code" in last
    assert "Traceback" not in refused.err
    assert not evil.marker.exists() and not out.exists()

    # trusting the code runs it: a process of its own, so the stored code never runs inside the test session

    trusted = _cli(
        "convert", str(evil.root / "tfk.h5"), "--recipe", "dynamic", "--out", str(out), "-q", "--trust-model-code"
    )
    assert trusted.returncode == 0, trusted.stderr
    assert evil.marker.exists() and any(out.glob("*.tflite"))
    evil.marker.unlink()
