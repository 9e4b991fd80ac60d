"""Rendering of records as text (72-column email), csv, json and markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from hcsim.errors import InputError

FORMATS = ("text", "csv", "json", "markdown")
EMAIL_WIDTH = 72


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return fmt


def cell(value) -> str:
    """A value as a csv/markdown cell: empty for None, lists joined with ';'."""
    if value is None:
        return ""
    if isinstance(value, (set, frozenset, list, tuple)):
        return ";".join(sorted(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def to_csv(columns: Sequence[str], rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row[c]) for c in columns])
    return out.getvalue()


def to_json(rows: Sequence[dict], **meta) -> str:
    def plain(v):
        if isinstance(v, (set, frozenset)):
            return sorted(v)
        return v
    body = [{k: plain(v) for k, v in row.items()} for row in rows]
    return json.dumps({**meta, "rows": body}, indent=2, sort_keys=False) + "\n"


def to_markdown(columns: Sequence[str], rows: Sequence[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row[c]) or "-" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def fixed(columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width text table; negative widths align left."""
    def fmt(values):
        return " ".join(f"{v:<{-w}}" if w < 0 else f"{v:>{w}}"
                        for v, (_, w) in zip(values, columns)).rstrip()
    lines = [fmt([c for c, _ in columns])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines) + "\n"
