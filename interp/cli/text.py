"""Plain-text layout of a summary dict, for commands run without --json.

    for line in summary_lines({"gate": {"layer": 3, "head": 1}, "heads": [{...}, ...]}):
        print(line)

Every value is laid out by its shape, never as a Python repr: numbers with 4 significant
digits, a dict of scalars as `a=1, b=2` (or one `name  value` line each when that is too
long), a list of records (dicts) as a table, a list of strings as `- ` lines, nested dicts
indented. Long lists and tables show their first `rows` entries and say how many more
`--json` holds. None reads `-` (e.g. a step that was not run).
"""

from __future__ import annotations

import math
from typing import Any

WIDTH = 100  # longest one-line rendering of a dict or list before it is laid out over lines
ROWS = 10  # table rows and list entries shown before "... N more" (dicts of numbers: 3x as many)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or hasattr(value, "item")


def scalar(value: Any) -> str:
    """A number or string as text: floats with 4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # a tensor/array of more than one value
            return f"<{type(value).__name__}; see --json>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _short(value: Any) -> str:
    """One cell: a scalar, or a short list/dict on one line."""
    if _is_scalar(value):
        return scalar(value)
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_short(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def table(records: list[dict], rows: int = ROWS, indent: str = "  ") -> list[str]:
    """Records as an aligned table (columns: the keys in first-seen order; numbers right-aligned)."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    shown = records[:rows]
    cells = [[_short(r.get(c)) for c in columns] for r in shown]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in shown)
               for c in columns]

    def line(values: list[str]) -> str:
        return indent + "  ".join(v.rjust(w) if num else v.ljust(w)
                                  for v, w, num in zip(values, widths, numeric)).rstrip()
    out = [line(columns)] + [line(row) for row in cells]
    if len(records) > rows:
        out.append(f"{indent}... {len(records) - rows} more rows (see --json)")
    return out


def value_lines(key: str, value: Any, rows: int = ROWS, indent: str = "") -> list[str]:
    """The lines of one `key: value` entry."""
    head = f"{indent}{key}:"
    inner = indent + "  "
    if _is_scalar(value):
        return [f"{head} {scalar(value)}"]
    if isinstance(value, dict):
        if not value:
            return [f"{head} -"]
        if all(_is_scalar(v) for v in value.values()):
            one = ", ".join(f"{k}={scalar(v)}" for k, v in value.items())
            if len(head) + len(one) < WIDTH:
                return [f"{head} {one}"]
            items, limit = list(value.items()), 3 * rows
            width = max(len(str(k)) for k, _ in items[:limit])
            out = [head] + [f"{inner}{str(k).ljust(width)}  {scalar(v)}" for k, v in items[:limit]]
            return out + ([f"{inner}... {len(items) - limit} more (see --json)"] if len(items) > limit else [])
        out = [head]
        for k, v in value.items():
            out += value_lines(str(k), v, rows, inner)
        return out
    if isinstance(value, (list, tuple)):
        if not value:
            return [f"{head} -"]
        if all(isinstance(v, dict) for v in value):
            return [head] + table(list(value), rows, inner)
        if all(isinstance(v, str) for v in value) and sum(len(v) + 2 for v in value) >= WIDTH:
            return [head] + [f"{inner}- {v}" for v in value[:rows]] + (
                [f"{inner}... {len(value) - rows} more (see --json)"] if len(value) > rows else [])
        parts, used = [], len(head)
        for v in value:
            part = _short(v)
            if used + len(part) + 2 > WIDTH:
                return [f"{head} {', '.join(parts)}, ... ({len(value)} values; see --json)"]
            parts.append(part)
            used += len(part) + 2
        return [f"{head} {', '.join(parts)}"]
    return [f"{head} {value}"]


def summary_lines(summary: dict, rows: int = ROWS) -> list[str]:
    """Every entry of `summary`, laid out for reading (see the module doc)."""
    out: list[str] = []
    for key, value in summary.items():
        out += value_lines(str(key), value, rows)
    return out
