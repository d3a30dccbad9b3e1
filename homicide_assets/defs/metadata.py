"""Metadata the Dagster UI shows beside an asset: one markdown table helper for every domain."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        text = "; ".join(map(str, value))
    elif isinstance(value, float):
        text = f"{value:.3g}"
    else:
        text = str(value)
    return text.replace("|", "/").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, n: int = 10, columns: list[str] | None = None) -> MetadataValue:
    """The first ``n`` rows of ``frame`` (optionally only ``columns``) as a markdown table.

    Callers choose columns that identify nobody: the UI is not the place for personal data.
    """
    if columns is not None:
        frame = frame.select([c for c in columns if c in frame.columns])
    if frame.is_empty() or not frame.columns:
        return MetadataValue.md("_none_")
    head = frame.head(n)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > n:
        lines.append(f"\n_... {frame.height - n} more_")
    return MetadataValue.md("\n".join(lines))
