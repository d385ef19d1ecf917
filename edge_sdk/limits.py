"""Limits on what a caller may ask of the machine (issue 26 section 2).

Thread counts: LiteRT's thread pool gains nothing past the machine's cores, and an absurd count
does real harm (``num_threads=100000`` ends in SIGSEGV; 20,000 really starts 20,000 threads).
The bound is ``max(64, 8 * os.cpu_count())``: 8x the cores leaves room for oversubscription
experiments (``bench --threads 1,2,4,8,16`` on a 2-core board), and the floor of 64 lets a bench
sweep written for a big device run on a small host; it sits far below the counts that crash.

Tensor sizes: no tensor a model declares, and no tensor a resize would make, may exceed
``max_tensor_bytes`` (default :data:`DEFAULT_MAX_TENSOR_BYTES`); a corrupt or hostile file asking for
gigabytes is refused before anything is allocated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.errors import InputError, ModelTooLargeError
from edge_sdk.flatbuffer import subgraph_count

if TYPE_CHECKING:
    from edge_sdk.tensors import _Signature

#: The floor of the thread bound, whatever the machine.
MIN_THREAD_BOUND = 64
#: Threads allowed per logical core above the floor.
THREADS_PER_CORE = 8
#: Default cap on any single tensor the model declares (guards against absurd shapes).
DEFAULT_MAX_TENSOR_BYTES = 1 << 30
#: ``(tensor index, shape signature, itemsize)`` of the tensors with a dynamic dimension.
DynamicTensors = list[tuple[int, tuple[int, ...], int]]


def max_threads() -> int:
    """The largest thread count edge-sdk accepts on this machine: ``max(64, 8 * os.cpu_count())``."""
    return max(MIN_THREAD_BOUND, THREADS_PER_CORE * (os.cpu_count() or 1))


def check_thread_count(value: Any, what: str = "num_threads", error: type = InputError) -> int:
    """Return ``value`` if it is an integer in ``1..max_threads()``; else raise ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"{what} must be a positive integer, got {value!r}")
    bound = max_threads()
    if value > bound:
        raise error(
            f"{what} is {value:,}; this machine allows at most {bound} threads "
            f"(max(64, 8 x {os.cpu_count() or 1} cores))"
        )
    return value


def check_tensor_sizes(wrapper: Any, data: bytes, limit: int | None) -> None:
    """Refuse a model any of whose tensors declares more than ``limit`` bytes (None: no limit)."""
    if limit is None:
        return
    # tflite-runtime 2.14's wrapper has no NumSubgraphs(): count them in the flatbuffer instead.
    count = wrapper.NumSubgraphs() if hasattr(wrapper, "NumSubgraphs") else subgraph_count(data)
    for subgraph in range(int(count)):
        for index in range(int(wrapper.NumTensors(subgraph))):
            try:
                shape = wrapper.TensorSize(index, subgraph)
                dtype = wrapper.TensorType(index, subgraph)
            except ValueError:  # tflite-runtime raises "Tensor with no shape found" where LiteRT says None
                continue
            if shape is None or dtype is None:
                continue
            try:
                itemsize = np.dtype(dtype).itemsize
            except TypeError:
                itemsize = 8
            elements = 1
            for d in shape:
                elements *= max(int(d), 1)
            nbytes = elements * itemsize
            if nbytes > limit:
                name = wrapper.TensorName(index, subgraph)
                raise ModelTooLargeError(
                    f"tensor {name!r} declares shape {list(map(int, shape))} ({nbytes:,} bytes); "
                    f"the limit (max_tensor_bytes) is {limit:,} bytes"
                )


def dynamic_tensors(wrapper: Any, subgraph: int, cache: dict[int, DynamicTensors]) -> DynamicTensors:
    """``(index, shape signature, itemsize)`` of ``subgraph``'s tensors with a dynamic (-1) dimension:
    the ones whose size follows the input shapes (kept in ``cache``: read once per subgraph)."""
    if subgraph in cache:
        return cache[subgraph]
    found = []
    for index in range(int(wrapper.NumTensors(subgraph))):
        try:
            # TensorSize first: it raises for a tensor without dims, where tflite-runtime 2.14's
            # TensorSizeSignature dereferences the null dims and crashes (SIGSEGV)
            if wrapper.TensorSize(index, subgraph) is None:
                continue
            shape = wrapper.TensorSizeSignature(index, subgraph)
            dtype = wrapper.TensorType(index, subgraph)
        except (ValueError, TypeError, AttributeError):
            continue
        if shape is None or dtype is None or not any(int(d) < 0 for d in shape):
            continue
        try:
            itemsize = np.dtype(dtype).itemsize
        except TypeError:
            itemsize = 8
        found.append((index, tuple(int(d) for d in shape), itemsize))
    cache[subgraph] = found
    return found


def check_resize_fits(
    wrapper: Any, sig: _Signature, arrays: Sequence[np.ndarray], limit: int | None, dynamic_tensors: DynamicTensors
) -> None:
    """Refuse, before any allocation, a resize whose inputs or estimated tensors exceed max_tensor_bytes.

    Each input is measured exactly. Every tensor with a dynamic dimension is estimated from its
    shape signature, each -1 at position i taking the size the inputs' dynamic dimension i now has
    (the batch, for the usual model), so a 2,000,000-row batch is refused in microseconds instead of
    allocating gigabytes and running for minutes (issue 26). After allocation the real sizes are
    checked again (:func:`check_allocated_fits`).
    """
    if limit is None:
        return
    for port, arr in zip(sig.inputs, arrays, strict=False):
        if arr.nbytes > limit:
            raise ModelTooLargeError(
                f"input {port.name!r} of shape {list(arr.shape)} is {arr.nbytes:,} bytes; the limit "
                f"(max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
            )
    dims: dict[int, int] = {}
    dynamic = {index: shape for index, shape, _ in dynamic_tensors}
    for port, arr in zip(sig.inputs, arrays, strict=False):
        for position, declared in enumerate(dynamic.get(port.index, ())):
            if declared < 0 and position < arr.ndim:
                dims[position] = max(dims.get(position, 1), int(arr.shape[position]))
    if not dims:
        return
    fallback = max(dims.values())
    for index, shape, itemsize in dynamic_tensors:
        nbytes = itemsize
        for position, d in enumerate(shape):
            nbytes *= d if d >= 0 else dims.get(position, fallback)
        if nbytes > limit:
            name = wrapper.TensorName(index, sig.subgraph)
            raise ModelTooLargeError(
                f"input shapes {[list(a.shape) for a in arrays]} would make tensor {name!r} about "
                f"{nbytes:,} bytes; the limit (max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
            )


def check_allocated_fits(wrapper: Any, sig: _Signature, limit: int | None, dynamic_tensors: DynamicTensors) -> None:
    """After a resize's allocation (reserved, not yet written): the real sizes of the dynamic tensors."""
    if limit is None:
        return
    for index, _, itemsize in dynamic_tensors:
        try:
            shape = wrapper.TensorSize(index, sig.subgraph)
        except ValueError:
            continue
        nbytes = itemsize
        for d in shape if shape is not None else ():
            nbytes *= max(int(d), 1)
        if nbytes > limit:
            name = wrapper.TensorName(index, sig.subgraph)
            raise ModelTooLargeError(
                f"tensor {name!r} has shape {list(map(int, shape))} ({nbytes:,} bytes) for this batch; "
                f"the limit (max_tensor_bytes) is {limit:,} bytes: send a smaller batch"
            )
