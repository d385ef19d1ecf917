"""Parity reports: JSON for machines, one self-contained HTML page for people.

The HTML embeds its plots as base64 PNGs (matplotlib, Agg backend), so the file
can be attached to a CI run or mailed and opened anywhere:

* per-layer quantization error as a bar chart (worst first);
* per-class accuracy, float vs quantized (per-class agreement without labels);
* a histogram of the output errors;
* size, accuracy and latency of each auto-tuning variant;
* accuracy per slice, float vs quantized (``parity --slice-by``, :mod:`edge_sdk.slices`).

and the trade-off page of ``--recipe auto`` (:func:`write_auto_html`). (The runtime's text tables are
:mod:`edge_sdk.report`; the latency check of ``convert`` is :mod:`converters.latency_check`.)
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_sdk.fileio import atomic_write_text

MAX_LAYER_BARS = 25


def write_json_report(path: Any, report: Mapping[str, Any]) -> Path:
    """Write the report as indented JSON, atomically."""
    from edge_sdk.console import json_default as _json_default

    atomic_write_text(path, json.dumps(report, indent=2, default=_json_default) + "\n")
    return Path(path)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from edge_sdk.errors import MissingExtraError

        raise MissingExtraError(
            "the HTML report needs matplotlib; install it with: pip install 'edge-sdk[convert]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_layers(layers: Sequence[Mapping[str, Any]], metric: str = "rel_rmse") -> str | None:
    """Horizontal bars of the worst layers' error (base64 PNG), or None without layers."""
    rows = [r for r in layers if r.get(metric) == r.get(metric)][:MAX_LAYER_BARS]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    labels = [f"{r['op']} {r['name'].split(';')[0][-40:]}" for r in rows][::-1]
    values = [r[metric] for r in rows][::-1]
    colors = ["#c0392b" if r.get("candidate") else "#7f8c8d" for r in rows][::-1]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel(f"{metric} (red: layers with weights, can be kept in float)")
    ax.set_title("Per-layer quantization error, worst at the top")
    return _png(fig)


def plot_per_class(per_class: Sequence[Mapping[str, Any]]) -> str | None:
    """Grouped bars of per-class accuracy, float vs quantized (agreement when there are no labels)."""
    if not per_class:
        return None
    plt = _pyplot()
    import numpy as np

    classes = [str(r.get("name", r["class"])) for r in per_class]
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(classes) + 2), 3.4))
    if "float_accuracy" in per_class[0]:
        ax.bar(x - 0.2, [r["float_accuracy"] for r in per_class], 0.4, label="float", color="#2c7fb8")
        ax.bar(x + 0.2, [r["quantized_accuracy"] for r in per_class], 0.4, label="quantized", color="#f03b20")
        ax.set_ylabel("accuracy")
        ax.set_title("Per-class accuracy, float vs quantized")
        low = min(min(r["float_accuracy"], r["quantized_accuracy"]) for r in per_class)
    else:
        ax.bar(x, [r["agreement"] for r in per_class], 0.6, label="top-1 agreement", color="#31a354")
        ax.set_ylabel("agreement")
        ax.set_title("Per-class top-1 agreement (classes as the float model predicts them)")
        low = min(r["agreement"] for r in per_class)
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=45 if len(classes) > 12 else 0, fontsize=8)
    ax.set_ylim(max(0.0, low - 0.1), 1.01)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def plot_error_histogram(histogram: Mapping[str, Any] | None) -> str | None:
    """Histogram of absolute output errors (log count axis)."""
    if not histogram or not histogram.get("counts"):
        return None
    plt = _pyplot()
    edges = histogram["edges"]
    counts = histogram["counts"]
    fig, ax = plt.subplots(figsize=(7, 3))
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color="#756bb1", edgecolor="white")
    if any(counts):
        ax.set_yscale("log")
    ax.set_xlabel(f"absolute error, output {histogram.get('output')}")
    ax.set_ylabel("elements")
    ax.set_title("Distribution of output errors (quantized - float)")
    return _png(fig)


def plot_variants(variants: Sequence[Mapping[str, Any]]) -> str | None:
    """Three panels: size, accuracy and latency of each auto-tuning variant."""
    if not variants:
        return None
    plt = _pyplot()
    names = [v["name"] for v in variants]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    colors = [
        "#7f8c8d" if v["name"] == "float32" else ("#31a354" if v["meets_budget"] else "#f03b20") for v in variants
    ]
    for ax, key, title in zip(
        axes,
        ("size_bytes", "accuracy", "latency_us"),
        ("size (bytes)", "accuracy", "latency (us, 1 thread)"),
        strict=False,
    ):
        values = [v[key] for v in variants]
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        if key == "accuracy":
            ax.set_ylim(max(0.0, min(values) - 0.05), 1.0)
    fig.suptitle("Variants tried (green: within budget, grey: float32 baseline)", fontsize=9)
    return _png(fig)


def plot_slices(slices: Mapping[str, Any] | None) -> str | None:
    """One panel per slicing: each slice's accuracy (agreement without labels), float vs quantized,
    with its count; tiny slices (not gated) hatched; the worst gated slice's label in red."""
    slicings = [s for s in (slices or {}).get("slicings") or [] if s.get("rows")]
    if not slicings or slices is None:
        return None
    plt = _pyplot()
    import numpy as np

    labelled = slices.get("metric") == "accuracy"
    heights = [0.3 * len(s["rows"]) + 0.9 for s in slicings]
    fig, axes = plt.subplots(
        len(slicings), 1, figsize=(9, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, slicing in zip(axes[:, 0], slicings, strict=False):
        rows = slicing["rows"][::-1]
        y = np.arange(len(rows))
        worst = (slicing.get("worst") or {}).get("slice")
        if labelled:
            values = [(r["float_accuracy"], r["quantized_accuracy"]) for r in rows]
            for offset, idx, color, name in ((0.2, 0, "#2c7fb8", "float"), (-0.2, 1, "#f03b20", "quantized")):
                bars = ax.barh(y + offset, [v[idx] for v in values], 0.4, color=color, label=name)
                for bar, r in zip(bars, rows, strict=False):
                    if r["tiny"]:
                        bar.set_hatch("//")
                        bar.set_alpha(0.45)
            low = min(min(v) for v in values)
            for yi, r in zip(y, rows, strict=False):  # the drop beside each slice, where the eye compares them
                ax.text(
                    1.005,
                    yi,
                    f"{r['drop_points']:+.2f} pts",
                    fontsize=7,
                    va="center",
                    transform=ax.get_yaxis_transform(),
                    color="#c0392b" if r["slice"] == worst else "#444",
                )
        else:
            ax.barh(y, [r["agreement"] for r in rows], 0.6, color="#31a354", label="top-1 agreement")
            low = min(r["agreement"] for r in rows)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{r['slice']} (n={r['count']}{', tiny' if r['tiny'] else ''})" for r in rows], fontsize=7)
        for tick, r in zip(ax.get_yticklabels(), rows, strict=False):
            if r["slice"] == worst:
                tick.set_color("#c0392b")
        ax.set_xlim(max(0.0, low - 0.1), 1.0)
        ax.set_title(f"--slice-by {slicing['spec']}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.09, 1.0))
    what = "accuracy" if labelled else "top-1 agreement"
    fig.suptitle(
        f"{what} per slice, float vs quantized (hatched: under {slices.get('min_count')} examples, "
        "not gated; red: worst slice; right: drop in points)",
        fontsize=9,
    )
    fig.tight_layout()
    return _png(fig)


def slices_html(slices: Mapping[str, Any] | None, gate: Mapping[str, Any] | None = None) -> list[str]:
    """The report's sliced-evaluation section (chart, verdict and one table per slicing); [] without slices."""
    if not slices:
        return []
    from edge_sdk.slices import SLICE_HEADERS, table_rows

    parts = ["<h2>Slices</h2>"]
    if gate and gate.get("status") != "none":
        word = gate["verdict"].split(":")[0].split()[0]
        parts.append(f"<p class='verdict {html.escape(word)}'>{html.escape(gate['verdict'])}</p>")
    parts.append(_img(plot_slices(slices), "accuracy per slice"))
    for slicing in slices.get("slicings") or []:
        parts.append(f"<h3>{html.escape(str(slicing['spec']))}</h3>")
        parts.append(_table(table_rows(slicing), SLICE_HEADERS))
    return parts


def plot_drift(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """One bar per feature (per channel for images): drift value / its threshold; past 1 (red) is drift."""
    rows = [r for r in rows if r.get("value") is not None and r.get("threshold")]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    ratios = [r["value"] / r["threshold"] for r in rows]
    ax.barh(range(len(rows)), ratios, color=["#f03b20" if r["drift"] else "#31a354" for r in rows])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['feature']} ({r['metric']})" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="#555", linestyle="--", linewidth=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("drift / threshold (past the dashed line: drift)", fontsize=8)
    ax.set_title("Data drift against the training statistics", fontsize=9)
    return _png(fig)


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(data: str | None, alt: str) -> str:
    if data is None:
        return f"<p class='none'>({html.escape(alt)}: nothing to plot)</p>"
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML string (plots embedded)."""
    parity = report.get("parity") or {}
    autotune = report.get("autotune")
    gate = report.get("gate")
    parts: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edge-sdk parity report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:right}th{background:#f3f3f3}.verdict{font-size:1.2em;"
        "padding:.5em;border-radius:4px}.PASS{background:#e5f5e0}.FAIL{background:#fee0d2}"
        ".ERROR,.NO{background:#f0f0f0}.none{color:#888}code{background:#f6f6f6}</style></head><body>",
        "<h1>edge-sdk parity report</h1>",
    ]
    if gate:
        word = gate["verdict"].split(":")[0].split()[0]
        parts.append(f"<p class='verdict {html.escape(word)}'>{html.escape(gate['verdict'])}</p>")
    if parity:
        fm, qm, data = parity.get("float_model", {}), parity.get("quantized_model", {}), parity.get("data", {})
        parts.append("<h2>Models and data</h2>")
        parts.append(
            _table(
                [
                    ["float", fm.get("path"), fm.get("kind"), (fm.get("sha256") or "")[:16]],
                    [
                        "quantized",
                        qm.get("path"),
                        f"{qm.get('kind')} ({qm.get('size_bytes')} bytes)",
                        (qm.get("sha256") or "")[:16],
                    ],
                    ["data", data.get("source"), f"{data.get('samples')} examples", (data.get("sha256") or "")[:16]],
                ],
                ["", "path", "what", "sha256"],
            )
        )
        s = parity["summary"]
        parts.append("<h2>Summary</h2>")
        parts.append(_table([[k, v] for k, v in s.items()], ["metric", "value"]))
        if parity.get("task_rows"):  # edge_sdk.tasks: the figures the model's task is judged by
            task = parity.get("task") or {}
            parts.append(
                f"<h2>Task: {html.escape(str(task.get('name')))}</h2><p>{html.escape(str(task.get('why') or ''))}</p>"
            )
            parts.append(
                _table(
                    [list(r) for r in parity["task_rows"]]
                    + [["WIPED OUT", w["what"]] for w in parity.get("wipeouts") or []],
                    ["metric", "value"],
                )
            )
        parts.append("<h2>Errors per output</h2>")
        parts.append(
            _table(
                [
                    [
                        o["float"],
                        o["quantized"],
                        o["max_abs_error"],
                        o["mean_abs_error"],
                        o["relative_error"],
                        o["cosine_mean"],
                        o["cosine_min"],
                    ]
                    for o in parity["outputs"]
                ],
                ["float output", "quantized output", "max abs", "mean abs", "relative", "cosine mean", "cosine min"],
            )
        )
        parts.append(_img(plot_error_histogram(parity.get("error_histogram")), "histogram of output errors"))
        parts.append(f"<h2>Per class (by {html.escape(parity.get('per_class_basis', 'label'))})</h2>")
        parts.append(_img(plot_per_class(parity.get("per_class") or []), "per-class accuracy"))
        pc = parity.get("per_class") or []
        if pc:
            keys = [
                k
                for k in ("class", "name", "count", "float_accuracy", "quantized_accuracy", "drop_points", "agreement")
                if k in pc[0]
            ]
            parts.append(_table([[r.get(k) for k in keys] for r in pc], keys))
        parts.extend(slices_html(parity.get("slices"), report.get("slice_gate")))
        parts.append("<h2>Worst examples</h2>")
        worst = parity.get("worst_examples") or []
        if worst:
            keys = list(worst[0].keys())
            parts.append(_table([[r.get(k) for k in keys] for r in worst], keys))
        layers = parity.get("layers")
        if layers:
            parts.append("<h2>Per-layer quantization error</h2>")
            parts.append(f"<p>{html.escape(parity.get('layers_note', ''))}</p>")
            parts.append(_img(plot_layers(layers), "per-layer error"))
            parts.append(
                _table(
                    [
                        [
                            r["rank"],
                            r["op"],
                            r["name"].split(";")[0],
                            r["rel_rmse"],
                            r["rmse_over_scale"],
                            r["max_abs_error"],
                            r["scale"],
                            "yes" if r["candidate"] else "no",
                        ]
                        for r in layers[:MAX_LAYER_BARS]
                    ],
                    ["rank", "op", "tensor", "rel_rmse", "rmse/scale", "max abs", "scale", "float-able"],
                )
            )
    if autotune:
        parts.append("<h2>Accuracy-budget auto-tuning</h2>")
        parts.append(f"<p><b>{html.escape(autotune['message'])}</b></p>")
        parts.append(_img(plot_variants(autotune["variants"]), "variants"))
        parts.append(
            _table(
                [
                    [
                        v["name"],
                        len(v["float_layers"]) if v["name"] != "float32" else "all",
                        v["size_bytes"],
                        v["accuracy"],
                        v["drop_points"],
                        v["latency_us"],
                        v["integer_ops"],
                        v["float_ops"],
                        "-" if v["name"] == "float32" else ("yes" if v["meets_budget"] else "no"),
                    ]
                    for v in autotune["variants"]
                ],
                [
                    "variant",
                    "float layers",
                    "size",
                    "accuracy",
                    "drop (points)",
                    "latency (us)",
                    "int8 ops",
                    "float ops",
                    "within budget",
                ],
            )
        )
    drift = report.get("data_drift")  # converters.datacheck.check_parity
    if drift:
        parts.append("<h2>Data drift against the training statistics</h2>")
        parts.append(
            f"<p>training: {html.escape(str(drift.get('training')))}; data: {html.escape(str(drift.get('data')))}"
            f"; drifted: {html.escape(', '.join(drift.get('drifted') or []) or 'none')}</p>"
        )
        parts.append(_img(plot_drift(drift.get("rows") or []), "data drift"))
        parts.append(
            _table(
                [
                    [
                        r["feature"],
                        r["kind"],
                        r["metric"],
                        r["value"],
                        r["threshold"],
                        "DRIFT" if r["drift"] else "ok",
                        r["training"],
                        r["data"],
                    ]
                    for r in drift.get("rows") or []
                ],
                ["feature", "kind", "metric", "value", "threshold", "drift", "training", "data"],
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(path: Any, report: Mapping[str, Any]) -> Path:
    """Render and write the HTML report atomically."""
    atomic_write_text(path, render_html(report))
    return Path(path)


def build_report(
    parity: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    autotune: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report: ``{"format", "parity", "gate", "autotune"}``."""
    return {"format": "edge-sdk-parity-report/1", "parity": parity, "gate": gate, "autotune": autotune}


TRADEOFF_HEADERS = [
    "candidate",
    "size x f32",
    "gzip x f32",
    "latency x f32 (median, p90)",
    "median us",
    "accuracy",
    "agreement",
    "drop",
    "within budget",
    "chosen",
    "reason",
]


def tradeoff_rows(record: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of the trade-off table from ``comparisons["auto"]``."""
    rows = []
    for r in record["table"]:
        lat = f"{r['latency_ratio']:.2f}x, {r['p90_ratio']:.2f}x" if r.get("latency_ratio") is not None else None
        acc = r.get("accuracy")
        agreement = r.get("agreement")
        rows.append(
            [
                r["name"],
                f"{r['size_ratio']:.3f}" if r.get("size_ratio") is not None else None,
                f"{r['gzip_ratio']:.3f}" if r.get("gzip_ratio") is not None else None,
                lat,
                round(r["median_us"], 1) if r.get("median_us") is not None else None,
                f"{100 * acc:.2f}%" if acc is not None else None,
                f"{100 * agreement:.2f}%" if agreement is not None else None,
                f"{r['drop_points']:.2f}" if r.get("drop_points") is not None else None,
                {True: "yes", False: "no"}.get(r.get("within_budget"), "-"),
                "CHOSEN" if r.get("chosen") else "",
                r.get("why") or "",
            ]
        )
    return rows


def render_auto_html(record: Mapping[str, Any], png: bytes | None = None) -> str:
    """The ``--recipe auto`` page: the decision, the Pareto plot and the whole trade-off table.

    ``record``: ``comparisons["auto"]`` of the run; ``png``: the Pareto plot's bytes (None: no plot).
    """
    lat = record.get("latency") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edge-sdk auto report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:right}th{background:#f3f3f3}.verdict{font-size:1.1em;padding:.5em;"
        "border-radius:4px;background:#e5f5e0}.none{color:#888}</style></head><body>",
        "<h1>edge-sdk convert --recipe auto</h1>",
        f"<p class='verdict'>chosen: <b>{html.escape(str(record.get('chosen')))}</b> (copied to "
        f"{html.escape(str(record.get('stable_file')))}): {html.escape(str(record.get('reason')))}</p>",
        "<p>"
        + html.escape(
            f"objective {record.get('objective')}; budget {record.get('max_drop')} "
            f"({record.get('budget_metric')}); accuracy on {(record.get('eval') or {}).get('source')} "
            f"({(record.get('eval') or {}).get('samples')} rows); latency {lat.get('target')} "
            f"({lat.get('device') or 'device not described'}), {lat.get('threads')} thread(s), batch "
            f"{lat.get('batch')}, candidates interleaved, {lat.get('seconds_per_candidate')} s each"
        )
        + "</p>",
        _img(base64.b64encode(png).decode("ascii") if png else None, "latency vs size (Pareto)"),
        _table(tradeoff_rows(record), TRADEOFF_HEADERS),
    ]
    notes = [(r["name"], note) for r in record.get("table", []) for note in r.get("notes") or []]
    if notes:
        parts.append("<h2>Notes</h2>")
        parts.append(_table([[name, note] for name, note in notes], ["candidate", "note"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_auto_html(path: Any, record: Mapping[str, Any], png: bytes | None = None) -> Path:
    """Render :func:`render_auto_html` and write it atomically."""
    atomic_write_text(path, render_auto_html(record, png))
    return Path(path)
