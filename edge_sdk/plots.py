"""Optional PNG of benchmark latency distributions. matplotlib is imported only when a plot is asked for."""
from __future__ import annotations

import io
import os
from typing import Any, Mapping, Union

from edge_sdk.errors import MissingExtraError


def require_matplotlib():
    """Return ``matplotlib.pyplot`` (headless Agg backend) or raise naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(
            "--png needs matplotlib, which is not installed; install it with: pip install matplotlib "
            "(or pip install 'edge-sdk[dev]'). The benchmark itself does not need it."
        ) from None
    matplotlib.use("Agg")  # devices and CI have no display
    import matplotlib.pyplot as plt

    return plt


def latency_png(doc: Mapping[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write box plots of per-run latency, one box per model and thread count, to ``path`` (atomically)."""
    from edge_sdk.fileio import atomic_write_bytes

    plt = require_matplotlib()
    series = []
    labels = []
    for res in doc.get("results", []):
        samples = res.get("samples_us")
        if res.get("status") == "ok" and samples:
            series.append(samples)
            labels.append(f"{res['label']}\n{res['threads']} thr, batch {res.get('batch')}")
    if not series:
        from edge_sdk.bench import BenchFormatError

        raise BenchFormatError("no per-run latencies to plot: every model failed, or the results hold no samples")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(series) + 2), 4.5))
    ax.boxplot(series, showfliers=True, whis=(1, 99))
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("latency per call (us)")
    ax.set_yscale("log")
    device = doc.get("device") or {}
    ax.set_title(f"edge-sdk bench on {device.get('cpu_model') or 'unknown CPU'} "
                 f"({(device.get('backend') or {}).get('name')} {(device.get('backend') or {}).get('version')})\n"
                 "box: p25-p75, line: median, whiskers: p1-p99", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
