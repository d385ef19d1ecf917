"""Per-layer quantization error from TFLite's QuantizationDebugger, ranked worst first.

The debugger converts the float model to full int8 with NumericVerify ops: each
quantized op is paired with a float copy fed the same (dequantized) inputs, so
the error it reports belongs to that layer alone, not to the layers before it.

Two error measures per layer:

* ``rmse_over_scale``: RMSE divided by the output's quantization step, the
  measure TensorFlow's debugger guide uses. Plain rounding gives about 0.29;
  much more means the op misbehaves once quantized (weights or bias).
* ``rel_rmse`` (the ranking default): RMSE divided by the median magnitude of
  the layer's float outputs (those above 0.1% of the peak). A few extreme activation outliers inflate
  a tensor's quantization step until ordinary values round to zero: the error
  then stays "one step" (``rmse_over_scale`` looks healthy) while it is as large
  as the values themselves, which ``rel_rmse`` shows.

Only layers with weights (convolutions, fully connected, matmuls, embeddings / GATHER) are
``candidate`` for keeping in float by :mod:`converters.autotune`: ops without
weights (reshape, pooling, softmax) inherit the scale of their inputs.

:class:`LayerDebugger` keeps one calibrated model and re-quantizes it with any
denylist in a fraction of a second, so the auto-tuner can try many mixes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from converters.errors import ConversionError, first_line

WEIGHTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "TRANSPOSE_CONV",
        "CONV_3D",
        "BATCH_MATMUL",
        "EMBEDDING_LOOKUP",
        "GATHER",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "LSTM",
    }
)  # GATHER: Keras Embedding layers convert to GATHER on a constant table
RANK_METRICS = ("rel_rmse", "rmse_over_scale", "max_abs_error", "rmse")


@dataclasses.dataclass
class LayerError:
    """Quantization error statistics of one layer (one quantized op's output tensor)."""

    name: str
    op: str
    tensor_index: int
    rmse: float
    rmse_over_scale: float
    rel_rmse: float
    max_abs_error: float
    mean_error: float
    scale: float
    zero_point: int
    num_elements: int
    candidate: bool
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def _relative_rmse(float_values: np.ndarray, quantized_values: np.ndarray, scale: float, zero_point: int) -> float:
    """RMSE over the median magnitude of the float values that matter (NaN when all are zero).

    Values below 0.1% of the tensor's peak are left out of the median, so the
    near-zero probabilities of a softmax do not make its error look enormous.
    """
    f = np.asarray(float_values, dtype=np.float64)
    dq = (np.asarray(quantized_values, dtype=np.float64) - zero_point) * scale
    magnitude = np.abs(f)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    if peak == 0.0:
        return float("nan")
    typical = float(np.median(magnitude[magnitude >= 1e-3 * peak]))
    return float(np.sqrt(np.mean((f - dq) ** 2)) / typical)


def _converter_for(loaded: Any, calibration: Mapping[str, np.ndarray]):
    from converters._tf import tf
    from converters.tflite_convert import tflite_converter

    converter = tflite_converter(loaded)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    n = len(next(iter(calibration.values())))

    def representative() -> Iterator[dict[str, np.ndarray]]:
        for i in range(n):
            yield {name: arr[i : i + 1] for name, arr in calibration.items()}

    converter.representative_dataset = representative
    return converter


class LayerDebugger:
    """A calibrated float model that can report per-layer errors and re-quantize with denylists.

    ``model`` is a :class:`converters.model_files.LoadedModel` (or a path to load);
    ``calibration`` maps input names to arrays (a few hundred examples is plenty);
    ``io`` is ``"int8"`` (integer inputs and outputs) or ``"float32"`` for the
    models :meth:`quantize` returns.
    """

    def __init__(self, model: Any, calibration: Mapping[str, np.ndarray], *, io: str = "int8", samples: int = 200):
        from converters._tf import tf
        from converters.model_files import LoadedModel, load

        if io not in ("int8", "float32"):
            raise ConversionError(f"io: expected 'int8' or 'float32', got {io!r}")
        self.loaded = model if isinstance(model, LoadedModel) else load(model)
        names = self.loaded.input_names
        missing = [n for n in names if n not in calibration]
        if missing:
            raise ConversionError(f"calibration data: expected arrays for inputs {names}, got {sorted(calibration)}")
        self.calibration = {n: np.asarray(calibration[n])[:samples] for n in names}
        self.io = io
        self._tf = tf
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=_converter_for(self.loaded, self.calibration),
                    debug_dataset=self._debug_rows,
                )
        except Exception as exc:  # noqa: BLE001 - TF raises many types; report one line
            raise ConversionError(
                f"the quantization debugger could not convert {self.loaded.describe()}: {first_line(exc)}"
            ) from None
        self._order: list[str] | None = None

    def _input_order(self, interpreter) -> list[str]:
        """Calibration input names in the debug interpreter's input order."""
        if self._order is None:
            by_index: dict[int, str] = {}
            try:
                for sig in interpreter._get_full_signature_list().values():  # noqa: SLF001 - TF's interpreter has no public call for signature indices
                    by_index.update({int(idx): name for name, idx in sig["inputs"].items()})
            except Exception:  # noqa: BLE001 - no signatures: fall back to tensor names
                by_index = {}
            order = []
            for position, detail in enumerate(interpreter.get_input_details()):
                name = by_index.get(int(detail["index"]))
                if name not in self.calibration:
                    name = detail["name"].split(":")[0].replace("serving_default_", "")
                if name not in self.calibration:
                    name = self.loaded.input_names[position]
                order.append(name)
            self._order = order
        return self._order

    def _debug_rows(self) -> Iterator[list[np.ndarray]]:
        order = self._input_order(self._debugger._quant_interpreter)  # noqa: SLF001 - TF's QuantizationDebugger keeps its quantized interpreter private
        n = len(next(iter(self.calibration.values())))
        for i in range(n):
            yield [self.calibration[name][i : i + 1] for name in order]

    def layer_errors(self, rank_by: str = "rel_rmse") -> list[LayerError]:
        """Per-layer statistics, worst first by ``rank_by`` (one of :data:`RANK_METRICS`)."""
        if rank_by not in RANK_METRICS:
            raise ConversionError(f"rank_by: expected one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
        tf = self._tf
        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"rel_rmse": _relative_rmse}
        )
        debug_model = self._requantize(options, debug=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # from content, so the interpreter keeps every intermediate tensor the metric reads
                stats = tf.lite.experimental.QuantizationDebugger(
                    quant_debug_model_content=debug_model, debug_dataset=self._debug_rows, debug_options=options
                )
                stats.run()
                text = io.StringIO()
                stats.layer_statistics_dump(text)
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
            raise ConversionError(f"the quantization debugger failed to run: {first_line(exc)}") from None
        rows: list[LayerError] = []
        for row in csv.DictReader(io.StringIO(text.getvalue())):
            scale = float(row["scale"])
            rmse = float(np.sqrt(float(row["mean_squared_error"])))
            rows.append(
                LayerError(
                    name=row["tensor_name"],
                    op=row["op_name"],
                    tensor_index=int(row["tensor_idx"]),
                    rmse=rmse,
                    rmse_over_scale=rmse / scale if scale else float("nan"),
                    rel_rmse=float(row["rel_rmse"]),
                    max_abs_error=float(row["max_abs_error"]),
                    mean_error=float(row["mean_error"]),
                    scale=scale,
                    zero_point=int(float(row["zero_point"])),
                    num_elements=int(float(row["num_elements"])),
                    candidate=row["op_name"] in WEIGHTED_OPS,
                )
            )
        rows.sort(key=lambda r: -_sortable(getattr(r, rank_by)))
        for i, layer in enumerate(rows, 1):
            layer.rank = i
        return rows

    def _requantize(self, options: Any, debug: bool) -> bytes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._debugger.options = options
                return (
                    self._debugger.get_debug_quantized_model()
                    if debug
                    else self._debugger.get_nondebug_quantized_model()
                )
        except Exception as exc:  # noqa: BLE001 - the library raises many exception types: one line naming the file, not a traceback
            raise ConversionError(
                f"re-quantizing with denylist {options.denylisted_nodes} failed: {first_line(exc)}"
            ) from None

    def quantize(self, denylist: Sequence[str] = ()) -> bytes:
        """A full-int8 .tflite with the layers named in ``denylist`` (tensor names) kept in float."""
        options = self._tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(denylist) or None, fully_quantize=self.io == "int8"
        )
        return self._requantize(options, debug=False)


def layer_errors(
    model: Any, calibration: Mapping[str, np.ndarray], *, rank_by: str = "rel_rmse", samples: int = 200
) -> list[LayerError]:
    """Per-layer quantization error of a fresh full-int8 conversion of ``model``, worst first."""
    return LayerDebugger(model, calibration, samples=samples).layer_errors(rank_by)


def layer_rows(layers: Sequence[Mapping[str, Any]], top: int = 15) -> list[list[Any]]:
    """Rows for the human table of the worst ``top`` layers."""
    return [
        [
            row["rank"],
            row["op"],
            _short_name(row["name"]),
            row["rel_rmse"],
            row["rmse_over_scale"],
            row["max_abs_error"],
            "yes" if row["candidate"] else "no",
        ]
        for row in list(layers)[:top]
    ]


LAYER_HEADERS = ["rank", "op", "layer (output tensor)", "rel_rmse", "rmse/scale", "max_abs_err", "float-able"]


def _short_name(name: str, width: int = 48) -> str:
    first = name.split(";")[0]
    return first if len(first) <= width else "..." + first[-(width - 3) :]


def _sortable(value: float) -> float:
    return -1.0 if value is None or value != value else float(value)


#: ops without weights that the TFLite quantizer gives the scale of their neighbours: keeping only the
#: final concat in float still leaves a requantize to its one scale upstream, so the whole tail goes
HEAD_TAIL_OPS = frozenset(
    {
        "CONCATENATION",
        "RESHAPE",
        "TRANSPOSE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "PACK",
        "STRIDED_SLICE",
        "SLICE",
        "SPLIT",
        "UNPACK",
    }
)


def head_tail_tensors(tflite: bytes) -> set:
    """Output-tensor names of the ops that write the model's outputs, and of the data-moving ops
    (reshape, concat, transpose ...) feeding them, back to the first op that computes something."""
    from edge_sdk.inspect_model import _operator_names, _schema

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    names = _operator_names(schema)
    graph = model.subgraphs[0]
    producer = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        for t in op.outputs:
            producer[int(t)] = (names.get(builtin, str(builtin)), op)
    found, todo, seen = set(), [int(t) for t in graph.outputs], set()
    while todo:
        t = todo.pop()
        if t in seen or t not in producer:
            continue
        seen.add(t)
        op_name, op = producer[t]
        found.add(
            graph.tensors[t].name.decode() if isinstance(graph.tensors[t].name, bytes) else str(graph.tensors[t].name)
        )
        if op_name in HEAD_TAIL_OPS:
            todo.extend(int(i) for i in op.inputs if int(i) >= 0)
    return found
