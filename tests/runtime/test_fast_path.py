"""Model.predict's fast path (inputs written straight into the interpreter) gives exactly the results of
the bare interpreter fed with quant.quantize(); the clip warning; string inputs; ModelPool settings."""

import warnings

import numpy as np
import pytest

import edge_sdk
from edge_sdk.model import Model
from edge_sdk.pool import ModelPool
from edge_sdk.quant import QuantizationClipWarning, dequantize, quantize


def bare_outputs(path, feeds):
    """Outputs of a fresh bare interpreter, inputs by signature name already in their storage dtype."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    return runner(**feeds)


def stored(model, feeds):
    """``feeds`` quantized with quant.quantize() where the input is quantized."""
    out = {}
    for spec in model.inputs:
        value = feeds[spec.name]
        if spec.quantization is not None:
            value = quantize(value, spec.quantization.scale, spec.quantization.zero_point, spec.dtype)
        out[spec.name] = value
    return out


def only_fast_path(model, monkeypatch):
    """Make the general path fail loudly, so a test proves the fast path ran."""

    def refuse(*args, **kwargs):
        raise AssertionError("the general path ran; the fast path was expected")

    monkeypatch.setattr(model, "_call_general", refuse)


@pytest.fixture(scope="module")
def tabular(runtime_models):
    """The 13-input Wide & Deep-shaped pair (runtime_model_factory.build_tabular_models, built once per session)."""
    return {name: runtime_models[name] for name in ("tabular_float32", "tabular_int8")}


@pytest.mark.parametrize("name", ["int8", "uint8"])
def test_fast_path_equals_bare_interpreter_on_awkward_values(runtime_models, digits_x, name, monkeypatch):
    model = edge_sdk.load(runtime_models[name])
    spec = model.inputs[0]
    scale = spec.quantization.scale
    rng = np.random.default_rng(0)
    rows = [digits_x[i : i + 1] for i in range(8)]
    halfway = ((rng.integers(-300, 300, size=(1, 8, 8, 1)) + 0.5) * np.float32(scale)).astype(np.float32)
    rows += [halfway, halfway * 3, -digits_x[:1], digits_x[:1] * 40, np.full((1, 8, 8, 1), 3e38, np.float32)]
    model.predict(rows[0])  # takes the views
    only_fast_path(model, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationClipWarning)
        for x in rows:
            feeds = stored(model, {spec.name: x})
            expected = bare_outputs(runtime_models[name], feeds)["probs"]
            np.testing.assert_array_equal(model.predict(x, raw=True), expected)
            out = model.outputs[0].quantization
            np.testing.assert_array_equal(model.predict(x), dequantize(expected, out.scale, out.zero_point))
            np.testing.assert_array_equal(model.predict(feeds[spec.name], raw=True), expected)  # stored ints


def test_views_follow_resizes_and_reset(runtime_models, digits_x):
    """Batch sizes alternate (each change reallocates the tensors); then the interpreter is rebuilt."""
    model = edge_sdk.load(runtime_models["int8"])
    single = [model.predict(digits_x[i : i + 1]) for i in range(6)]
    for batch in (5, 1, 3, 1, 1, 6, 1):
        np.testing.assert_array_equal(model.predict(digits_x[:batch]), np.concatenate(single[:batch]))
    model.reset()
    np.testing.assert_array_equal(model.predict(digits_x[:1]), single[0])
    np.testing.assert_array_equal(model.predict(digits_x[:6]), np.concatenate(single))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fast_path_refuses_non_finite_values(runtime_models, digits_x, tabular, bad):
    model = edge_sdk.load(runtime_models["int8"])
    model.predict(digits_x[:1])
    x = digits_x[:1].copy()
    x[0, 3, 4, 0] = bad
    with pytest.raises(edge_sdk.NonFiniteInputError, match="'image'.*1 NaN/inf"):
        model.predict(x)
    table = edge_sdk.load(tabular["tabular_int8"])
    row = {f"f{i}": np.array([[0.1 * i]], np.float32) for i in range(13)}
    table.predict(row)
    row["f7"] = np.array([[bad]], np.float32)
    with pytest.raises(edge_sdk.NonFiniteInputError, match="'f7'.*1 NaN/inf"):
        table.predict(row)


def test_thirteen_one_value_inputs_equal_bare_interpreter(tabular, monkeypatch):
    model = edge_sdk.load(tabular["tabular_int8"])
    rng = np.random.default_rng(1)
    specs = {s.name: s for s in model.inputs}
    row0 = {name: np.zeros((1, 1), np.float32) for name in specs}
    model.predict(row0)
    only_fast_path(model, monkeypatch)
    values = np.concatenate([rng.normal(0, 2, 40), [0.0, -0.0, 1e30, -1e30, 3.4e38]]).astype(np.float32)
    for value in values:
        row = {}
        for i, name in enumerate(sorted(specs)):
            q = specs[name].quantization
            v = value if i % 2 else (np.float32(rng.integers(-200, 200)) + np.float32(0.5)) * np.float32(q.scale)
            row[name] = np.array([[v]], np.float32)
        expected = bare_outputs(tabular["tabular_int8"], stored(model, row))["probability"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationClipWarning)
            np.testing.assert_array_equal(model.predict(row, raw=True), expected)


def test_float_tabular_model_fast_path(tabular, monkeypatch):
    model = edge_sdk.load(tabular["tabular_float32"])
    row = {f"f{i}": np.array([[0.3 * i - 1]], np.float32) for i in range(13)}
    model.predict(row)
    only_fast_path(model, monkeypatch)
    expected = bare_outputs(tabular["tabular_float32"], row)["probability"]
    np.testing.assert_array_equal(model.predict(row), expected)


def test_wrong_inputs_still_get_clear_errors_after_the_fast_path(tabular):
    model = edge_sdk.load(tabular["tabular_float32"])
    row = {f"f{i}": np.array([[0.5]], np.float32) for i in range(13)}
    model.predict(row)
    with pytest.raises(edge_sdk.InputNameError, match="unknown input name 'g1'"):
        model.predict({**{k: v for k, v in row.items() if k != "f1"}, "g1": row["f1"]})
    with pytest.raises(edge_sdk.InputShapeError, match="'f3' expects rank 2"):
        model.predict({**row, "f3": np.zeros((1, 1, 1), np.float32)})
    float64 = {k: v.astype(np.float64) for k, v in row.items()}  # converted, not refused
    np.testing.assert_array_equal(model.predict(float64), model.predict(row))


# -- the clip warning --------------------------------------------------------------------------


def test_clip_warning_once_per_input_with_the_fraction_and_unchanged_results(runtime_models, digits_x):
    model = edge_sdk.load(runtime_models["int8"])
    spec = model.inputs[0]
    raw_pixels = digits_x[:4] * 16.0  # 0..16, for a model calibrated on [0, 1]
    steps = raw_pixels / np.float32(spec.quantization.scale) + spec.quantization.zero_point
    share = np.mean((steps < -128.5) | (steps > 127.5))  # clipped by more than half a step
    assert share > 0.3
    with pytest.warns(QuantizationClipWarning, match=r"input 'image': \d+\.\d% of its values .* were clipped") as got:
        first = model.predict(raw_pixels)
    assert len(got) == 1 and f"{share:.1%}" in str(got[0].message)
    expected = edge_sdk.load(runtime_models["int8"]).predict(
        quantize(raw_pixels, spec.quantization.scale, spec.quantization.zero_point, np.int8), raw=True
    )
    out = model.outputs[0].quantization
    np.testing.assert_array_equal(first, dequantize(expected, out.scale, out.zero_point))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(raw_pixels)  # once per input per Model
        model.predict(raw_pixels[:1])
        edge_sdk.load(runtime_models["int8"]).predict(digits_x)  # data in range: no warning
    with pytest.warns(QuantizationClipWarning):  # another Model warns again
        edge_sdk.load(runtime_models["int8"]).predict(raw_pixels)


@pytest.mark.parametrize("clipped_calls,warns", [(3, True), (1, False)])
def test_one_value_inputs_are_judged_over_their_first_hundred_values(tabular, clipped_calls, warns):
    model = edge_sdk.load(tabular["tabular_int8"])
    row = {f"f{i}": np.array([[0.1]], np.float32) for i in range(13)}
    far = {**row, "f5": np.array([[1e6]], np.float32)}
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        for call in range(100):
            model.predict(far if call < clipped_calls else row)
    messages = [str(w.message) for w in got if w.category is QuantizationClipWarning]
    if warns:
        assert len(messages) == 1 and "input 'f5': 3.0% of its values (3 of 100 checked)" in messages[0]
    else:
        assert messages == []  # 1% is not above the threshold


# -- string inputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def string_model(tmp_path_factory):
    """A model with a string input (gathered in reverse) beside a float input (doubled)."""
    tf = pytest.importorskip("tensorflow", reason="builds its model with TensorFlow (absent in the target lanes)")

    class Strings(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([2], tf.string, name="words"),
                tf.TensorSpec([2], tf.float32, name="weights"),
            ]
        )
        def run(self, words, weights):
            return {"swapped": tf.gather(words, [1, 0]), "doubled": weights * 2.0}

    module = Strings()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.run.get_concrete_function()], module)
    path = tmp_path_factory.mktemp("strings") / "strings.tflite"
    path.write_bytes(converter.convert())
    return path


def test_string_inputs_take_bytes_and_str(string_model):
    model = edge_sdk.load(string_model)
    weights = np.array([1.0, 2.5], np.float32)
    for words in (
        np.array([b"ab", b"cde"]),
        np.array(["ab", "cde"]),
        ["ab", "cde"],
        np.array(["ab", b"cde"], dtype=object),
    ):
        out = model.predict({"words": words, "weights": weights})
        assert out["swapped"].tolist() == [b"cde", b"ab"]
        np.testing.assert_array_equal(out["doubled"], [2.0, 5.0])
    assert model.predict({"words": ["é", "x"], "weights": weights})["swapped"].tolist() == [b"x", "é".encode()]
    with pytest.raises(
        edge_sdk.InputDtypeError, match="'words' is a string tensor; expected an array of bytes or str, got float64"
    ):
        model.predict({"words": np.array([1.0, 2.0]), "weights": weights})
    with pytest.raises(edge_sdk.InputDtypeError, match="object array holding int"):
        model.predict({"words": np.array([1, "a"], dtype=object), "weights": weights})


# -- ModelPool ------------------------------------------------------------------------------


def test_model_pool_gives_every_model_the_load_settings(runtime_models, digits_x, monkeypatch):
    """Every pool member gets load()'s settings: with a default tensor limit too small for the model,
    max_tensor_bytes=None must reach the extra interpreters, not only the first."""
    defaults = dict(Model.__init__.__kwdefaults__)
    monkeypatch.setattr(Model.__init__, "__kwdefaults__", {**defaults, "max_tensor_bytes": 64})
    with pytest.raises(edge_sdk.ModelTooLargeError):
        Model(runtime_models["int8"].read_bytes(), edge_sdk.backends.get_backend("litert"))
    pool = ModelPool(runtime_models["int8"], size=3, max_tensor_bytes=None, num_threads=1)
    assert [m._max_tensor_bytes for m in pool._models] == [None, None, None]
    assert [m.num_threads for m in pool._models] == [1, 1, 1]
    np.testing.assert_array_equal(pool.predict(digits_x), edge_sdk.load(runtime_models["int8"]).predict(digits_x))
