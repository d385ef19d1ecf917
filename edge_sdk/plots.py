"""Optional PNG of benchmark latency distributions. matplotlib is imported only when a plot is asked for."""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from edge_sdk.errors import MissingExtraError


def require_matplotlib() -> Any:
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


def latency_png(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
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
        from edge_sdk.errors import BenchFormatError

        raise BenchFormatError("no per-run latencies to plot: every model failed, or the results hold no samples")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(series) + 2), 4.5))
    ax.boxplot(series, showfliers=True, whis=(1, 99))
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("latency per call (us)")
    ax.set_yscale("log")
    device = doc.get("device") or {}
    ax.set_title(
        f"edge-sdk bench on {device.get('cpu_model') or 'unknown CPU'} "
        f"({(device.get('backend') or {}).get('name')} {(device.get('backend') or {}).get('version')})\n"
        "box: p25-p75, line: median, whiskers: p1-p99",
        fontsize=9,
    )
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def pareto_png(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str = "") -> bytes:
    """Write the ``--recipe auto`` trade-off as a PNG (atomically) and return its bytes.

    One point per measured candidate: latency (median, x float32) against file size
    (x float32), coloured by accuracy (top-1 agreement with float32 when there are no
    labels); the chosen candidate is ringed, candidates over the accuracy budget are
    crosses, and the Pareto front (no other candidate both faster and smaller) is joined.
    ``rows``: ``comparisons["auto"]["table"]`` rows (``name``, ``latency_ratio``,
    ``size_ratio``, ``accuracy``/``agreement``, ``within_budget``, ``chosen``).
    """
    from edge_sdk.fileio import atomic_write_bytes

    points = [r for r in rows if r.get("latency_ratio") is not None and r.get("size_ratio") is not None]
    if not points:
        from edge_sdk.errors import EdgeSdkError

        raise EdgeSdkError("no candidate has both a latency and a size to plot")
    plt = require_matplotlib()
    use_accuracy = all(r.get("accuracy") is not None for r in points)
    quality_key = "accuracy" if use_accuracy else "agreement"
    values = [100.0 * (float(v) if (v := r.get(quality_key)) is not None else float("nan")) for r in points]
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    xs = [r["latency_ratio"] for r in points]
    ys = [r["size_ratio"] for r in points]
    front = sorted(
        (
            r
            for r in points
            if not any(
                o is not r
                and o["latency_ratio"] <= r["latency_ratio"]
                and o["size_ratio"] <= r["size_ratio"]
                and (o["latency_ratio"], o["size_ratio"]) != (r["latency_ratio"], r["size_ratio"])
                for o in points
            )
        ),
        key=lambda r: r["latency_ratio"],
    )
    if len(front) > 1:
        ax.plot(
            [r["latency_ratio"] for r in front],
            [r["size_ratio"] for r in front],
            color="#bbbbbb",
            zorder=1,
            label="Pareto front (faster and smaller)",
        )
    inside = [i for i, r in enumerate(points) if r.get("within_budget")]
    outside = [i for i, r in enumerate(points) if not r.get("within_budget")]
    finite = [v for v in values if v == v]
    low, high = (min(finite), max(finite)) if finite else (0.0, 100.0)
    if high - low < 0.1:  # equal accuracies: a readable band around them, not a 1e-7 wide colour scale
        low, high = low - 0.5, high + 0.5
    scatter = None
    for idx, marker, label in ((inside, "o", "within budget"), (outside, "X", "over budget")):
        if idx:
            scatter = ax.scatter(
                [xs[i] for i in idx],
                [ys[i] for i in idx],
                c=[values[i] for i in idx],
                cmap="viridis",
                vmin=low,
                vmax=high,
                s=70,
                marker=marker,
                edgecolors="black",
                linewidths=0.5,
                zorder=2,
                label=label,
            )
    wide = max(xs) / min(xs) > 4.0  # a 28x-slower candidate would squash the rest onto one pixel
    span_x = (math.log(max(xs)) - math.log(min(xs))) if wide else (max(xs) - min(xs))
    span_y = max(ys) - min(ys)

    def place(
        r: Mapping[str, Any],
    ) -> tuple[float, float]:  # position in [0, 1] of the plot, to find labels that would overprint each other
        x = math.log(r["latency_ratio"]) - math.log(min(xs)) if wide else r["latency_ratio"] - min(xs)
        return x / (span_x or 1.0), (r["size_ratio"] - min(ys)) / (span_y or 1.0)

    placed: list[tuple[float, float]] = []
    for r in sorted(points, key=lambda r: (r["latency_ratio"], r["size_ratio"])):
        x, y = place(r)
        crowd = sum(1 for px, py in placed if abs(px - x) < 0.12 and abs(py - y) < 0.06)
        placed.append((x, y))
        ax.annotate(
            r["name"],
            (r["latency_ratio"], r["size_ratio"]),
            textcoords="offset points",
            xytext=(6, 4 - 10 * crowd),
            fontsize=7,
        )
        if r.get("chosen"):
            ax.scatter(
                [r["latency_ratio"]],
                [r["size_ratio"]],
                s=320,
                facecolors="none",
                edgecolors="#d62728",
                linewidths=2.0,
                zorder=3,
                label=f"chosen: {r['name']}",
            )
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    ax.axvline(1.0, color="#999999", linestyle=":", linewidth=1)
    ax.axhline(1.0, color="#999999", linestyle=":", linewidth=1)
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax)
        bar.set_label("accuracy (%)" if use_accuracy else "top-1 agreement with float32 (%)")
    from matplotlib.ticker import FuncFormatter

    if wide:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}x"))
    ax.set_xlabel("median latency, x float32" + (" (log scale)" if wide else "") + "; left is faster")
    ax.set_ylabel("file size, x float32")
    ax.set_title(textwrap.fill(title or "auto: candidates measured side by side", 90), fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return data
