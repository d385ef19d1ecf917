"""Integrity: weight corruption that loads and runs is caught by the manifest's sha256; size limits."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import IntegrityError, ModelTooLargeError
from edge_sdk.inspect_model import weight_buffer_ranges


def _corrupt_weights(data: bytes, seed: int = 0) -> bytes:
    """Overwrite 16 bytes in the middle of the largest weight buffer: the flatbuffer stays valid."""
    start, end = max(weight_buffer_ranges(data), key=lambda r: r[1] - r[0])
    assert end - start > 256
    middle = (start + end) // 2
    out = bytearray(data)
    out[middle : middle + 16] = np.random.default_rng(seed).integers(0, 256, 16, dtype=np.uint8).tobytes()
    assert bytes(out) != data
    return bytes(out)


@pytest.mark.parametrize("name", ["float32", "int8"])
def test_weight_corruption_runs_silently_but_the_manifest_refuses_it(name, model_copy, digits_x):
    path = model_copy(name)
    original = path.read_bytes()
    expected = edge_sdk.load(path).predict(digits_x)
    path.write_bytes(_corrupt_weights(original))

    # Without the check the corrupt model loads and runs, and answers differently: a silent wrong answer.
    corrupt = edge_sdk.load(path, verify=False).predict(digits_x)
    assert corrupt.shape == expected.shape
    assert not np.array_equal(corrupt, expected)

    with pytest.raises(IntegrityError, match="does not match its manifest") as info:
        edge_sdk.load(path)
    message = str(info.value)
    assert edge_sdk.load(original).sha256 in message  # names what was expected ...
    assert edge_sdk.load(path, verify=False).sha256 in message  # ... and what came

    # The same bytes in memory with the manifest passed as a dict or a path are refused too.
    manifest_path = path.with_suffix(".json")
    for manifest in (json.loads(manifest_path.read_text()), manifest_path, str(manifest_path)):
        with pytest.raises(IntegrityError):
            edge_sdk.load(path.read_bytes(), manifest=manifest)
    path.write_bytes(original)
    np.testing.assert_array_equal(edge_sdk.load(path).predict(digits_x), expected)


def test_max_model_bytes(digits_models):
    path = digits_models["float32"]
    size = path.stat().st_size
    with pytest.raises(ModelTooLargeError, match=f"{size:,} bytes.*limit.*{size - 1:,}"):
        edge_sdk.load(path, max_model_bytes=size - 1)
    with pytest.raises(ModelTooLargeError):
        edge_sdk.load(path.read_bytes(), max_model_bytes=1000)
    assert edge_sdk.load(path, max_model_bytes=size).size_bytes == size


def _set_tensor_dims(data: bytes, tensor_name_part: str, dims) -> bytes:
    """Rewrite a tensor's shape and shape_signature in place (same rank), as a hostile file could."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    out = bytearray(data)
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        if tensor_name_part not in tensor.Name().decode() or tensor.ShapeLength() != len(dims):
            continue
        for field_offset in (4, 18):  # Tensor.shape and Tensor.shape_signature
            o = flatbuffers.number_types.UOffsetTFlags.py_type(tensor._tab.Offset(field_offset))
            if not o:
                continue
            start, length = tensor._tab.Vector(o), tensor._tab.VectorLen(o)
            assert length == len(dims)
            for k, d in enumerate(dims):
                value = d if (field_offset == 4 or k != 0) else -1
                out[start + 4 * k : start + 4 * k + 4] = int(value).to_bytes(4, "little", signed=True)
        return bytes(out)
    raise AssertionError(f"no tensor named like {tensor_name_part!r}")


def test_a_model_asking_for_absurd_tensor_sizes_is_refused_before_allocation(digits_models):
    data = digits_models["float32"].read_bytes()
    hostile = _set_tensor_dims(data, "Relu", [1, 60000, 60000, 8])  # 115 GB of float32
    with pytest.raises(ModelTooLargeError, match=r"declares shape \[1, 60000, 60000, 8\].*max_tensor_bytes"):
        edge_sdk.load(hostile)
    modest = _set_tensor_dims(data, "Relu", [1, 600, 600, 8])  # 11.5 MB: under the default cap of 1 GiB ...
    with pytest.raises(ModelTooLargeError):
        edge_sdk.load(modest, max_tensor_bytes=1 << 20)  # ... but over a 1 MiB cap set by the app


def _edit(manifest, path, value):
    """Set manifest[path[0]][path[1]]... = value (in place) and return the old value."""
    target = manifest
    for key in path[:-1]:
        target = target[key]
    old = target[path[-1]]
    target[path[-1]] = value(old) if callable(value) else value
    return old


# (what to edit, how, the field the error must name)
CONTRADICTIONS = [
    (("inputs", 0, "dtype"), "float32", "dtype"),
    (("inputs", 0, "shape"), lambda s: s[:-1] + [3], "shape"),
    (("inputs", 0, "name"), "pixels", "inputs: manifest declares 1 (pixels)"),
    (("inputs", 0, "quantization", "scale"), lambda s: s * 2, "quantization.scale"),
    (("inputs", 0, "quantization", "zero_point"), lambda z: z + 1, "quantization.zero_point"),
    (("inputs", 0, "quantization"), None, "quantization: manifest none"),
    (("outputs", 0, "shape"), lambda s: s[:-1] + [11], "shape"),
    (("outputs", 0, "dtype"), "uint8", "dtype"),
    (("outputs",), lambda o: o + [dict(o[0], name="extra")], "outputs: manifest declares 2"),
    (("labels",), lambda labels: labels[:9], "labels: manifest lists 9 labels"),
    (("size_bytes",), lambda n: n + 1, "size_bytes"),
]


@pytest.mark.parametrize("path,value,field", CONTRADICTIONS, ids=[".".join(map(str, c[0])) for c in CONTRADICTIONS])
def test_a_manifest_contradicting_the_model_is_refused(model_copy, path, value, field):
    from edge_sdk.manifest import ManifestMismatchError

    model = model_copy("int8")
    manifest_path = model.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    old = _edit(manifest, path, value)
    new = manifest
    for key in path:
        new = new[key]
    manifest_path.write_text(json.dumps(manifest))  # the sha256 still matches: only the description lies

    with pytest.raises(ManifestMismatchError) as info:
        edge_sdk.load(model)
    message = str(info.value)
    assert isinstance(info.value, IntegrityError) and str(model) in message and field in message, message
    if path[-1] in ("dtype", "shape", "scale", "zero_point", "size_bytes"):  # both values are named
        assert f"manifest {new}" in message.replace("'", "") and f"model {old}" in message.replace("'", ""), message
    edge_sdk.load(model, verify=False)  # the documented way around the check
    with pytest.raises(ManifestMismatchError):  # the same manifest passed in with the bytes
        edge_sdk.load(model.read_bytes(), manifest=manifest)


def test_manifests_that_agree_or_declare_nothing_load(model_copy, digits_models):
    for name in ("float32", "int8"):
        model = edge_sdk.load(digits_models[name])
        assert model.manifest["inputs"] == [s.to_dict() for s in model.inputs]
    model = model_copy("int8")
    manifest_path = model.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    manifest["inputs"], manifest["outputs"], manifest["labels"] = [], [], None  # older tools wrote no I/O
    manifest_path.write_text(json.dumps(manifest))
    edge_sdk.load(model)
