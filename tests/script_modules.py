"""Import a script from ``benchmarks/`` as a module, so tests call its functions directly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark_script(file_name: str, module_name: str) -> ModuleType:
    """``benchmarks/<file_name>`` imported under ``module_name`` (registered in ``sys.modules`` first,
    because dataclasses look their module up while the class is built)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / file_name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
