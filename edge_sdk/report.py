"""Plain-text tables for people; JSON is the machine format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        magnitude = abs(value)
        if magnitude == 0:
            return "0"
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:.3g}" if magnitude < 100 else f"{value:.1f}"
        return f"{value:.4g}"
    from edge_sdk.console import clean_text

    return clean_text(value)  # a label or error may come from a device or a file: no escape sequences


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Render ``rows`` under ``headers`` as an aligned text table."""
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            numeric = cell[:1].isdigit() or cell[:1] in "-+." and cell[1:2].isdigit()
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), sep] + [line(r) for r in text_rows])
