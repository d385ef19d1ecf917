"""A description of the device a benchmark ran on: CPU, cores, memory, OS, Python, backend.

Only the standard library is used, so this works on a board that has nothing but
the light runtime. Every field is best-effort: a value the platform does not
expose is ``None`` rather than a guess.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from typing import Any


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU's marketing name, e.g. ``AMD EPYC`` or ``Cortex-A76`` (Linux, macOS), else ``None``."""
    text = _read_text("/proc/cpuinfo")
    if text:
        for key in ("model name", "cpu model"):
            value = _cpuinfo_field(text, key)
            if value:
                return value
        # Many aarch64 kernels list only the implementer/part numbers; name the common Arm cores.
        part = _cpuinfo_field(text, "CPU part")
        implementer = _cpuinfo_field(text, "CPU implementer")
        if implementer == "0x41" and part in _ARM_PARTS:
            return f"ARM {_ARM_PARTS[part]}"
        for key in ("Hardware", "Processor"):
            value = _cpuinfo_field(text, key)
            if value:
                return value
        if part:
            return f"implementer {implementer} part {part}"
    model = _read_text("/sys/firmware/devicetree/base/model")
    if model:
        return model.strip("\x00\n ")
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or None


_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd4d": "Cortex-A715",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
}


def _cpuinfo_field(text: str, key: str) -> str | None:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key and value.strip():
            return value.strip()
    return None


def device_model() -> str | None:
    """The board's name from the device tree (``Raspberry Pi 5 Model B Rev 1.0``), or Android's model."""
    model = _read_text("/sys/firmware/devicetree/base/model")
    if model:
        return model.strip("\x00\n ")
    return _android_property("ro.product.model")


def _android_property(name: str) -> str | None:
    if not os.path.exists("/system/build.prop"):
        return None
    import subprocess

    try:
        out = subprocess.run(["getprop", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def cores() -> dict[str, int | None]:
    """Logical CPUs in the machine and those this process may run on (affinity, cgroups aside)."""
    logical = os.cpu_count()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = logical
    return {"logical": logical, "usable": usable}


def memory_total_mb() -> float | None:
    """Physical memory in MiB (from /proc/meminfo), or ``None`` where not readable."""
    text = _read_text("/proc/meminfo")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return round(int(parts[1]) / 1024.0, 1)
    return None


def cpu_frequency_mhz() -> float | None:
    """The current maximum CPU frequency in MHz from cpufreq, when the kernel exposes it."""
    text = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if text and text.strip().isdigit():
        return round(int(text.strip()) / 1000.0, 1)
    return None


def os_description() -> dict[str, str | None]:
    """OS name, kernel release and, on Linux, the distribution's pretty name."""
    pretty = None
    text = _read_text("/etc/os-release")
    if text:
        for line in text.splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    android = _android_property("ro.build.version.release")
    if android:
        pretty = f"Android {android}"
    return {"system": platform.system(), "release": platform.release(), "distribution": pretty}


def backend_description(backend: str | None = None) -> dict[str, str | None]:
    """Name and version of the interpreter backend ``edge_sdk.load`` would use (or ``backend``)."""
    from edge_sdk.backends import get_backend
    from edge_sdk.errors import BackendUnavailableError

    try:
        chosen = get_backend(backend)
    except BackendUnavailableError as exc:
        return {"name": backend, "version": None, "error": str(exc)}
    return {"name": chosen.name, "version": chosen.version}


def describe(backend: str | None = None) -> dict[str, Any]:
    """Everything above as one JSON-ready dict (the ``device`` block of a bench results file)."""
    from edge_sdk import __version__

    return {
        "cpu_model": cpu_model(),
        "device_model": device_model(),
        "machine": platform.machine(),
        "cores": cores(),
        "cpu_max_mhz": cpu_frequency_mhz(),
        "memory_total_mb": memory_total_mb(),
        "os": os_description(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": _numpy_version(),
        "edge_sdk": __version__,
        "backend": backend_description(backend),
        "hostname": platform.node() or None,
    }


def _numpy_version() -> str | None:
    try:
        import numpy

        return numpy.__version__
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        return None


def summary_line(info: Mapping[str, Any]) -> str:
    """One readable line: ``AMD EPYC, 2 cores, Linux 6.1 (Debian 12), Python 3.11.2, litert 2.3.0``."""
    os_info = info.get("os") or {}
    dist = f" ({os_info['distribution']})" if os_info.get("distribution") else ""
    backend = info.get("backend") or {}
    core_info = info.get("cores") or {}
    return (
        f"{info.get('cpu_model') or 'unknown CPU'} ({info.get('machine')}), "
        f"{core_info.get('usable') or '?'} cores, {os_info.get('system')} {os_info.get('release')}{dist}, "
        f"Python {info.get('python')}, {backend.get('name')} {backend.get('version')}"
    )
