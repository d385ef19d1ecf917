"""Keras LSTM / GRU / SimpleRNN models into TFLite builtins: the recurrent layers unrolled.

    from converters.recurrent import convertible
    model = convertible(loaded)      # the same LoadedModel, or a clone whose RNN layers are unrolled

Why: TensorFlow 2.21's TFLiteConverter lowers a Keras RNN layer with a dynamic batch to
TensorList ops and refuses it (``'tf.TensorListReserve' op requires element_shape to be
static``). Fixing the batch at 1 makes it convert, but a Keras LSTM then becomes the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op, whose hidden and cell states are *variable* tensors:
they carry over from one ``invoke`` to the next, so a stateless model silently answers
each example from the previous one's state (measured: top-1 accuracy 83% in Keras, 15% in
LiteRT without ``reset()`` between examples). A GRU becomes a WHILE loop.

Unrolling (``unroll=True``: the same weights, one set of ops per timestep) gives plain
FULLY_CONNECTED / ADD / MUL / LOGISTIC / TANH ops: stateless, any batch, and every recipe
(int8, dynamic, fp16) quantizes them; outputs equal the Keras model's (max difference 0.0
measured on digits). The cost is file size growing with the number of timesteps, which
must be fixed (the model's input names it). A ``stateful=True`` layer is refused: its
state lives between calls, which a stateless ``.tflite`` cannot keep.

Works on tf_keras (``.h5``, tf_keras ``.keras``) and Keras 3 ``.keras`` models; the clone
is made once per loaded model and reused by every conversion of the run.
"""

from __future__ import annotations

from typing import Any

from converters.errors import ConversionError, first_line
from converters.model_files import KIND_KERAS3, KIND_TF_KERAS, LoadedModel

_CACHE_ATTR = "_unrolled_for_tflite"


def _layers(model: Any) -> list[Any]:
    """Every layer of ``model``, nested models and wrappers (Bidirectional, TimeDistributed) included."""
    out = []
    for layer in getattr(model, "layers", []) or []:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_layers(layer))
        for attr in ("forward_layer", "backward_layer", "layer"):
            inner = getattr(layer, attr, None)
            if inner is not None and hasattr(inner, "get_config"):
                out.append(inner)
    return out


def _is_rnn(layer: Any) -> bool:
    return any(cls.__name__ == "RNN" for cls in type(layer).__mro__)


def recurrent_layers(model: Any) -> list[Any]:
    """The recurrent (``RNN`` subclass: LSTM, GRU, SimpleRNN, ...) layers of a Keras model that are not unrolled."""
    return [layer for layer in _layers(model) if _is_rnn(layer) and not getattr(layer, "unroll", False)]


def _unroll_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a layer's) with ``unroll`` set on it and on any RNN it wraps (Bidirectional)."""
    config = dict(config)
    if "unroll" in config:
        config["unroll"] = True
    for key in ("layer", "backward_layer"):
        inner = config.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            config[key] = dict(inner, config=_unroll_config(inner["config"]))
    return config


def convertible(model: LoadedModel) -> LoadedModel:
    """``model`` itself, or (when it has recurrent layers) an unrolled clone with the same weights.

    Raises :class:`ConversionError` for a stateful layer or a variable number of timesteps.
    """
    if model.kind not in (KIND_TF_KERAS, KIND_KERAS3):
        return model
    cached = getattr(model, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    rnns = recurrent_layers(model.model)
    if not rnns:
        return model
    stateful = [layer.name for layer in rnns if getattr(layer, "stateful", False)]
    if stateful:
        raise ConversionError(
            f"{model.describe()}: recurrent layer(s) {', '.join(stateful)} are stateful: expected "
            "stateless RNN layers (stateful=False); a .tflite keeps no state between calls"
        )
    for spec in model.inputs:
        if len(spec.shape) >= 3 and spec.shape[1] is None:
            raise ConversionError(
                f"{model.describe()}: input {spec.name!r} has a variable number of timesteps (shape {spec.shape}) "
                f"feeding {type(rnns[0]).__name__} {rnns[0].name!r}: expected a fixed sequence length to unroll it "
                "into TFLite builtins; rebuild the Input with shape=(timesteps, features)"
            )
    if model.kind == KIND_TF_KERAS:
        from converters._tf import tf_keras as keras_module
    else:
        import keras as keras_module

    def clone(layer: Any) -> Any:
        if _is_rnn(layer) or any(_is_rnn(inner) for inner in _layers_of_wrapper(layer)):
            return layer.__class__.from_config(_unroll_config(layer.get_config()))
        return layer.__class__.from_config(layer.get_config())

    try:
        unrolled = keras_module.models.clone_model(model.model, clone_function=clone)
        unrolled.set_weights(model.model.get_weights())
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError/TypeError alike
        raise ConversionError(
            f"{model.describe()}: unrolling its recurrent layers "
            f"({', '.join(layer.name for layer in rnns)}) for TFLite failed: "
            f"{first_line(exc, 300)}"
        ) from None
    from converters.model_files import from_keras

    result = from_keras(unrolled, model.path)
    result.inputs = model.inputs  # the same names, shapes and dtypes as the model the user gave
    setattr(model, _CACHE_ATTR, result)
    return result


def _layers_of_wrapper(layer: Any) -> list[Any]:
    return [
        getattr(layer, attr)
        for attr in ("forward_layer", "backward_layer", "layer")
        if getattr(layer, attr, None) is not None
    ]


__all__ = ["convertible", "recurrent_layers"]
