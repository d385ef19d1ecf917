"""The 13-input int8 model's one-value loop checks only each input's rank and lets item() refuse any size but 1:
every other shape still reaches the general path and its clear error, and the other inputs' writes are redone."""

import numpy as np
import pytest

import edge_sdk


@pytest.fixture(scope="module")
def tabular_int8(runtime_models):
    """The 13-input Wide & Deep-shaped int8 model (runtime_model_factory.build_tabular_models, built once per session)."""
    return runtime_models["tabular_int8"]


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1,), "'f5' expects rank 2 .* got shape \\(1,\\)"),
        ((1, 1, 1), "'f5' expects rank 2"),
        ((0, 1), "'f5' got an empty batch"),
        ((2, 1), "same batch size.*f5: 2"),
    ],
)
def test_wrong_shapes_of_one_value_inputs_get_the_general_paths_errors(tabular_int8, shape, message):
    model = edge_sdk.load(tabular_int8)
    row = {f"f{i}": np.array([[0.25 * i - 1.5]], np.float32) for i in range(13)}
    expected = model.predict(row)
    assert model._default.one_values is not None  # the all-one-value loop is what this exercises
    with pytest.raises(edge_sdk.InputShapeError, match=message):
        model.predict({**row, "f5": np.full(shape, 0.5, np.float32)})
    np.testing.assert_array_equal(model.predict(row), expected)
