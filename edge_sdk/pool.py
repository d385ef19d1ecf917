""":class:`ModelPool`: several independent interpreters over one verified model, for parallel ``predict``."""

from __future__ import annotations

import os
import queue
from typing import Any

from edge_sdk.errors import ArgumentError, check_argument
from edge_sdk.loader import LOAD_OPTIONS, is_positive_int, load
from edge_sdk.model import Model
from edge_sdk.tensors import TensorSpec


class ModelPool:
    """A fixed set of independent :class:`Model` instances for parallel ``predict``.

    Each call borrows one interpreter, so up to ``size`` calls run at once
    (``invoke`` releases the GIL). Outputs equal those of a single model.
    """

    def __init__(self, model: str | os.PathLike[str] | bytes, size: int = 2, **load_kwargs: Any):
        check_argument("ModelPool", "size", size, "an integer >= 1", is_positive_int(size))
        unknown = sorted(set(load_kwargs) - LOAD_OPTIONS)
        if unknown:
            raise ArgumentError(
                f"ModelPool: unknown argument {unknown[0]!r}; expected edge_sdk.load's: "
                f"{', '.join(sorted(LOAD_OPTIONS))}"
            )
        first = load(model, **load_kwargs)
        # The first load did the checks (integrity, signature, isolation); the others reuse its
        # verified bytes with every setting that shapes the interpreter (threads, limits, accelerator).
        self._models = [first] + [first._clone() for _ in range(size - 1)]  # noqa: SLF001 - the pool shares Model's verified bytes
        self._free: queue.Queue[Model] = queue.Queue()
        for m in self._models:
            self._free.put(m)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Inputs of the default signature."""
        return self._models[0].inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Outputs of the default signature."""
        return self._models[0].outputs

    def predict(self, x: Any, **kwargs: Any) -> Any:  # as Model.predict: an array, or a dict by output name
        """:meth:`Model.predict` on whichever interpreter is free."""
        model = self._free.get()
        try:
            return model.predict(x, **kwargs)
        finally:
            self._free.put(model)
