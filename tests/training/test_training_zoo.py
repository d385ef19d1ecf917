"""Model zoo: sizes, named inputs/outputs, and TFLite conversion with builtin ops only."""

import numpy as np
import pytest

from training import zoo
from training.errors import TrainingError, UnknownNameError


def test_student_has_at_most_a_quarter_of_the_teacher_params(digits, mnist):
    for d in (digits, mnist):
        teacher = zoo.count_params(zoo.build("cnn", d))
        student = zoo.count_params(zoo.build("cnn-student", d))
        assert student <= teacher / 4, (d.name, teacher, student)


def test_image_models_output_softmax_over_classes(digits):
    model = zoo.build("cnn", digits)
    assert model.input_names == ["image"] and model.output_names == ["probabilities"]
    probs = model.predict(digits.x_test[:4], verbose=0)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_wide_deep_takes_named_inputs_and_outputs_one_probability(adult):
    model = zoo.build("wide-deep", adult)
    assert sorted(model.input_names) == sorted(adult.feature_spec.input_names)
    assert model.output_names == ["probability"]
    prob = model.predict(adult.take("test", 5), verbose=0)
    assert prob.shape == (5, 1) and ((prob > 0) & (prob < 1)).all()
    names = {layer.name for layer in model.layers}
    assert "wide_cross_education_x_occupation" in names and "embed_native_country" in names
    # an index past the vocabulary is capped to the OOV bucket inside the model, not an error
    x = adult.take("test", 1)
    oov = dict(x, occupation=np.array([[adult.feature_spec.feature("occupation").oov_index]], np.int32))
    past = dict(x, occupation=np.array([[999]], np.int32))
    np.testing.assert_allclose(model.predict(past, verbose=0), model.predict(oov, verbose=0), rtol=1e-6)


def test_wrong_model_for_the_data_is_a_clear_error(digits, adult):
    with pytest.raises(UnknownNameError, match="cnn-student"):
        zoo.build("resnet", digits)
    with pytest.raises(TrainingError, match="image dataset"):
        zoo.build("cnn", adult)
    with pytest.raises(TrainingError, match="tabular"):
        zoo.build("wide-deep", digits)


def _convert(model, samples, int8):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8:

        def representative():
            n = len(next(iter(samples.values()))) if isinstance(samples, dict) else len(samples)
            for i in range(n):
                yield (
                    {k: v[i : i + 1] for k, v in samples.items()} if isinstance(samples, dict) else [samples[i : i + 1]]
                )

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.mark.parametrize("name", ["cnn-student", "wide-deep"])
def test_converts_to_tflite_builtins_float_and_int8(name, digits, adult):
    from ai_edge_litert.interpreter import Interpreter

    data = digits if name == "cnn-student" else adult
    model = zoo.build(name, data)
    x = data.take("test", 16)
    flat = _convert(model, x, int8=False)
    runner = Interpreter(model_content=flat).get_signature_runner("serving_default")
    feed = x if isinstance(x, dict) else {"image": x}
    out = runner(**feed)
    key = model.output_names[0]
    np.testing.assert_allclose(out[key], model.predict(x, verbose=0), atol=1e-5)

    quant = _convert(model, data.take("train", 32), int8=True)
    interp = Interpreter(model_content=quant)
    assert interp.get_signature_list()["serving_default"]["outputs"] == [key]
    float_inputs = [d for d in interp.get_input_details() if d["dtype"] != np.int32]
    assert float_inputs and all(d["dtype"] == np.int8 for d in float_inputs)
    assert len(quant) < len(flat)
