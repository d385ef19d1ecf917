"""Small ONNX models built as PyTorch's exporter writes them (issue 24): node names ``/model.22/Sub``,
inputs ``images`` / ``input.1``, Constant nodes for small tensors. No torch needed: ``onnx.helper`` and
numpy weights (seeded), so tests and ``benchmarks/conformance.py`` build the same files.

* :func:`yolo_detector`: a conv backbone, then YOLOv8's DFL-free box decoding (ltrb distances from
  anchor-grid points: Sub/Add/Div/Mul by strides, Concat) and sigmoid class scores, concatenated into
  one ``[1, 4 + C, N]`` output (boxes in pixels of the input image).
* :func:`lstm_model`: ``torch.nn.LSTM`` as ``torch.onnx.export`` writes it: ONNX ``LSTM`` with the
  gates reordered (iofc), inputs ``input.1`` [T, 1, F], ``h0``/``c0``; outputs y, hn, cn.
* :func:`vad_model`: Silero-VAD-like: inputs ``input`` [1, S], ``state`` [2, 1, H] and int64 ``sr``; an ``If``
  on ``sr == 16000`` picks the frame scale; an ``LSTMCell``-like step updates the state; outputs the
  speech probability and the new state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

YOLO_SIZE = 32
YOLO_CLASSES = 3


def _onnx():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


def _save(graph, path: Path, opset: int = 17) -> Path:
    onnx, _, helper, _ = _onnx()
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch", producer_version="2.1.0"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def _const(name: str, value: np.ndarray):
    _, _, helper, numpy_helper = _onnx()
    return helper.make_node(
        "Constant",
        [],
        [name + "_output_0"],
        name=name,
        value=numpy_helper.from_array(np.asarray(value), name + "_value"),
    )


def yolo_detector(
    path: Path,
    classes: int = YOLO_CLASSES,
    size: int = YOLO_SIZE,
    seed: int = 0,
    dfl: bool = False,
    reg_max: int = 16,
    image_size: int = 0,
) -> Path:
    """A YOLOv8-style detector ``images`` [1, 3, size, size] -> ``output0`` [1, 4 + C, N] (two strides, 8 and 16).

    ``dfl``: the box distances come from YOLOv8's DFL (Reshape [1, 4, reg_max, N], Transpose, Softmax,
    a fixed 1x1 Conv with weights 0..reg_max-1, Reshape [1, 4, N]) instead of a ReLU. ``image_size``: boxes in
    pixels of an image that large (640: the input is a downscaled 640x640 frame; strides scale with it), as
    YOLOv8's 0-640 boxes beside 0-1 scores; 0: pixels of the input.
    """
    _, TensorProto, helper, numpy_helper = _onnx()
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def weight(name, shape, scale):
        inits.append(numpy_helper.from_array((rng.normal(0, 1, shape) * scale).astype(np.float32), name))
        return name

    def conv(name, x, cin, cout, k, stride, act=True, wscale=None, bias=0.0):
        w = weight(f"{name}.weight", (cout, cin, k, k), wscale or (2.0 / (cin * k * k)) ** 0.5)
        inits.append(
            numpy_helper.from_array(
                np.full(cout, bias, np.float32) + rng.normal(0, 0.1, cout).astype(np.float32), f"{name}.bias"
            )
        )
        out = f"/{name}/Conv_output_0"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w, f"{name}.bias"],
                [out],
                name=f"/{name}/Conv",
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        if not act:
            return out
        sig = f"/{name}/act/Sigmoid_output_0"
        nodes.append(helper.make_node("Sigmoid", [out], [sig], name=f"/{name}/act/Sigmoid"))
        nodes.append(helper.make_node("Mul", [out, sig], [f"/{name}/act/Mul_output_0"], name=f"/{name}/act/Mul"))
        return f"/{name}/act/Mul_output_0"

    h = conv("model.0", "images", 3, 8, 3, 2)  # /2
    h8 = conv("model.1", h, 8, 16, 3, 2)  # /4
    p3 = conv("model.2", h8, 16, 16, 3, 2)  # /8
    p4 = conv("model.3", p3, 16, 16, 3, 2)  # /16
    heads, anchors, strides = [], [], []
    for level, (feature, stride) in enumerate(((p3, 8), (p4, 16))):
        side = size // stride
        # box distances (pixels of the stride grid, >= 0: Softplus-free, as ReLU'd regressions) and class logits
        box = conv(
            f"model.22.cv2.{level}",
            feature,
            16,
            4 * (reg_max if dfl else 1),
            1,
            1,
            act=False,
            wscale=0.4 if dfl or not image_size else 0.1,
            bias=0.0 if dfl else 1.5 if not image_size else 0.6,
        )
        cls = conv(f"model.22.cv3.{level}", feature, 16, classes, 1, 1, act=False, wscale=0.6, bias=-1.0)
        cat = f"/model.22/Concat_{level}_output_0"
        nodes.append(helper.make_node("Concat", [box, cls], [cat], name=f"/model.22/Concat_{level}", axis=1))
        heads.append((cat, side * side))
        ys, xs = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.reshape(-1), ys.reshape(-1)]))
        strides.append(np.full(side * side, stride * (image_size / size if image_size else 1.0), np.float32))
    n = sum(k for _, k in heads)
    flat = []
    for i, (cat, _k) in enumerate(heads):
        shape = _const(f"/model.22/Constant_{i}", np.array([1, 4 * (reg_max if dfl else 1) + classes, -1], np.int64))
        nodes.append(shape)
        nodes.append(
            helper.make_node(
                "Reshape", [cat, shape.output[0]], [f"/model.22/Reshape_{i}_output_0"], name=f"/model.22/Reshape_{i}"
            )
        )
        flat.append(f"/model.22/Reshape_{i}_output_0")
    nodes.append(helper.make_node("Concat", flat, ["/model.22/Concat_2_output_0"], name="/model.22/Concat_2", axis=2))
    split = _const("/model.22/Constant_2", np.array([4 * (reg_max if dfl else 1), classes], np.int64))
    nodes.append(split)
    nodes.append(
        helper.make_node(
            "Split",
            ["/model.22/Concat_2_output_0", split.output[0]],
            ["/model.22/Split_output_0", "/model.22/Split_output_1"],
            name="/model.22/Split",
            axis=1,
        )
    )
    if dfl:
        shape = _const("/model.22/dfl/Constant_1", np.array([1, 4, reg_max, n], np.int64))
        out_shape = _const("/model.22/dfl/Constant_2", np.array([1, 4, n], np.int64))
        inits.append(
            numpy_helper.from_array(
                np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1), "model.22.dfl.conv.weight"
            )
        )
        nodes += [
            shape,
            helper.make_node(
                "Reshape",
                ["/model.22/Split_output_0", shape.output[0]],
                ["/model.22/dfl/Reshape_output_0"],
                name="/model.22/dfl/Reshape",
            ),
            helper.make_node(
                "Transpose",
                ["/model.22/dfl/Reshape_output_0"],
                ["/model.22/dfl/Transpose_output_0"],
                name="/model.22/dfl/Transpose",
                perm=[0, 2, 1, 3],
            ),
            helper.make_node(
                "Softmax",
                ["/model.22/dfl/Transpose_output_0"],
                ["/model.22/dfl/Softmax_output_0"],
                name="/model.22/dfl/Softmax",
                axis=1,
            ),
            helper.make_node(
                "Conv",
                ["/model.22/dfl/Softmax_output_0", "model.22.dfl.conv.weight"],
                ["/model.22/dfl/conv/Conv_output_0"],
                name="/model.22/dfl/conv/Conv",
                kernel_shape=[1, 1],
            ),
            out_shape,
            helper.make_node(
                "Reshape",
                ["/model.22/dfl/conv/Conv_output_0", out_shape.output[0]],
                ["/model.22/dist"],
                name="/model.22/dfl/Reshape_1",
            ),
        ]
    else:
        nodes.append(helper.make_node("Relu", ["/model.22/Split_output_0"], ["/model.22/dist"], name="/model.22/Relu"))
    # dist2bbox(xywh=True): lt, rb = dist.chunk(2, 1); x1y1 = anchor - lt; x2y2 = anchor + rb; c = (x1y1 + x2y2) / 2; wh = x2y2 - x1y1
    half = _const("/model.22/dfl/Constant", np.array([2, 2], np.int64))
    nodes.append(half)
    nodes.append(
        helper.make_node(
            "Split",
            ["/model.22/dist", half.output[0]],
            ["/model.22/Slice_output_0", "/model.22/Slice_1_output_0"],
            name="/model.22/Split_1",
            axis=1,
        )
    )
    inits.append(numpy_helper.from_array(np.concatenate(anchors, axis=1)[None].astype(np.float32), "/model.22/anchors"))
    inits.append(numpy_helper.from_array(np.concatenate(strides)[None, None].astype(np.float32), "/model.22/strides"))
    nodes += [
        helper.make_node(
            "Sub", ["/model.22/anchors", "/model.22/Slice_output_0"], ["/model.22/Sub_output_0"], name="/model.22/Sub"
        ),
        helper.make_node(
            "Add",
            ["/model.22/anchors", "/model.22/Slice_1_output_0"],
            ["/model.22/Add_1_output_0"],
            name="/model.22/Add_1",
        ),
        helper.make_node(
            "Add",
            ["/model.22/Sub_output_0", "/model.22/Add_1_output_0"],
            ["/model.22/Add_2_output_0"],
            name="/model.22/Add_2",
        ),
        _const("/model.22/Constant_3", np.array(2.0, np.float32)),
        helper.make_node(
            "Div",
            ["/model.22/Add_2_output_0", "/model.22/Constant_3_output_0"],
            ["/model.22/Div_1_output_0"],
            name="/model.22/Div_1",
        ),
        helper.make_node(
            "Sub",
            ["/model.22/Add_1_output_0", "/model.22/Sub_output_0"],
            ["/model.22/Sub_1_output_0"],
            name="/model.22/Sub_1",
        ),
        helper.make_node(
            "Concat",
            ["/model.22/Div_1_output_0", "/model.22/Sub_1_output_0"],
            ["/model.22/Concat_4_output_0"],
            name="/model.22/Concat_4",
            axis=1,
        ),
        helper.make_node(
            "Mul",
            ["/model.22/Concat_4_output_0", "/model.22/strides"],
            ["/model.22/Mul_2_output_0"],
            name="/model.22/Mul_2",
        ),
        helper.make_node(
            "Sigmoid", ["/model.22/Split_output_1"], ["/model.22/Sigmoid_output_0"], name="/model.22/Sigmoid"
        ),
        helper.make_node(
            "Concat",
            ["/model.22/Mul_2_output_0", "/model.22/Sigmoid_output_0"],
            ["output0"],
            name="/model.22/Concat_5",
            axis=1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, n])],
        inits,
    )
    return _save(graph, path)


def _lstm_weights(rng, features: int, hidden: int, scale: float = 0.4):
    """ONNX LSTM W [1, 4H, F], R [1, 4H, H], B [1, 8H] (gate order i, o, f, c: torch's i, f, g, o reordered)."""
    w = (rng.normal(0, scale, (1, 4 * hidden, features))).astype(np.float32)
    r = (rng.normal(0, scale, (1, 4 * hidden, hidden))).astype(np.float32)
    b = (rng.normal(0, 0.1, (1, 8 * hidden))).astype(np.float32)
    return w, r, b


def lstm_model(path: Path, steps: int = 8, features: int = 4, hidden: int = 8, seed: int = 0) -> Path:
    """``torch.nn.LSTM(F, H, batch_first=True)`` exported with its initial state: inputs ``input.1`` [1, T, F], ``h0``
    and ``c0`` [1, 1, H]; outputs ``output`` [1, T, H] (Transpose, LSTM, Squeeze, Transpose, as torch writes it),
    ``hn``, ``cn``."""
    _, TensorProto, helper, numpy_helper = _onnx()
    rng = np.random.default_rng(seed)
    w, r, b = _lstm_weights(rng, features, hidden)
    inits = [
        numpy_helper.from_array(w, "onnx::LSTM_W"),
        numpy_helper.from_array(r, "onnx::LSTM_R"),
        numpy_helper.from_array(b, "onnx::LSTM_B"),
        numpy_helper.from_array(np.array([1], np.int64), "/Constant_output_0"),
    ]
    nodes = [
        helper.make_node(
            "Transpose", ["input.1"], ["/lstm/Transpose_output_0"], name="/lstm/Transpose", perm=[1, 0, 2]
        ),
        helper.make_node(
            "LSTM",
            ["/lstm/Transpose_output_0", "onnx::LSTM_W", "onnx::LSTM_R", "onnx::LSTM_B", "", "h0", "c0"],
            ["/lstm/LSTM_output_0", "hn", "cn"],
            name="/lstm/LSTM",
            hidden_size=hidden,
        ),
        helper.make_node(
            "Squeeze", ["/lstm/LSTM_output_0", "/Constant_output_0"], ["/lstm/Squeeze_output_0"], name="/lstm/Squeeze"
        ),
        helper.make_node("Transpose", ["/lstm/Squeeze_output_0"], ["output"], name="/lstm/Transpose_1", perm=[1, 0, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [
            helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, steps, features]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, hidden]),
            helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, 1, hidden]),
        ],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, steps, hidden]),
            helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 1, hidden]),
            helper.make_tensor_value_info("cn", TensorProto.FLOAT, [1, 1, hidden]),
        ],
        inits,
    )
    return _save(graph, path, opset=14)


def vad_model(path: Path, samples: int = 64, hidden: int = 16, seed: int = 0) -> Path:
    """Silero-VAD-like: ``input`` [1, S], ``state`` [2, 1, H], int64 scalar ``sr`` -> ``output`` [1, 1], ``stateN``.

    ``If(sr == 16000)`` picks the frame's scale (its branches read an outer-scope Constant, as
    Silero's do); one LSTM step carries the state.
    """
    _, TensorProto, helper, numpy_helper = _onnx()
    rng = np.random.default_rng(seed)
    w, r, b = _lstm_weights(rng, hidden, hidden)
    then_branch = helper.make_graph(
        [helper.make_node("Mul", ["input", "/Constant_output_0"], ["then_out"], name="/If/then/Mul")],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["input", "half"], ["else_out"], name="/If/else/Mul")],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half")],
    )
    inits = [
        numpy_helper.from_array(np.array(16000, np.int64), "sr16k"),
        numpy_helper.from_array((rng.normal(0, 1, (samples, hidden)) / samples**0.5).astype(np.float32), "encoder.W"),
        numpy_helper.from_array(w, "decoder.W"),
        numpy_helper.from_array(r, "decoder.R"),
        numpy_helper.from_array(b, "decoder.B"),
        numpy_helper.from_array(rng.normal(0, 0.5, (hidden, 1)).astype(np.float32), "decoder.out.W"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([1, 1], np.int64), "split11"),
    ]
    nodes = [
        helper.make_node(
            "Constant",
            [],
            ["/Constant_output_0"],
            name="/Constant",
            value=numpy_helper.from_array(np.array(1.0, np.float32)),
        ),
        helper.make_node("Equal", ["sr", "sr16k"], ["/Equal_output_0"], name="/Equal"),
        helper.make_node(
            "If", ["/Equal_output_0"], ["/If_output_0"], name="/If", then_branch=then_branch, else_branch=else_branch
        ),
        helper.make_node("MatMul", ["/If_output_0", "encoder.W"], ["/encoder/MatMul_output_0"], name="/encoder/MatMul"),
        helper.make_node("Relu", ["/encoder/MatMul_output_0"], ["/encoder/Relu_output_0"], name="/encoder/Relu"),
        helper.make_node(
            "Unsqueeze", ["/encoder/Relu_output_0", "axis0"], ["/decoder/Unsqueeze_output_0"], name="/decoder/Unsqueeze"
        ),
        helper.make_node("Split", ["state", "split11"], ["/decoder/h", "/decoder/c"], name="/decoder/Split", axis=0),
        helper.make_node(
            "LSTM",
            ["/decoder/Unsqueeze_output_0", "decoder.W", "decoder.R", "decoder.B", "", "/decoder/h", "/decoder/c"],
            ["/decoder/Y", "/decoder/Y_h", "/decoder/Y_c"],
            name="/decoder/rnn/LSTM",
            hidden_size=hidden,
        ),
        helper.make_node("Concat", ["/decoder/Y_h", "/decoder/Y_c"], ["stateN"], name="/decoder/Concat", axis=0),
        helper.make_node("Squeeze", ["/decoder/Y_h", "axis0"], ["/decoder/Squeeze_output_0"], name="/decoder/Squeeze"),
        helper.make_node(
            "MatMul",
            ["/decoder/Squeeze_output_0", "decoder.out.W"],
            ["/decoder/out/MatMul_output_0"],
            name="/decoder/out/MatMul",
        ),
        helper.make_node("Sigmoid", ["/decoder/out/MatMul_output_0"], ["output"], name="/decoder/out/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, samples]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, hidden]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, 1, hidden]),
        ],
        inits,
    )
    return _save(graph, path)
