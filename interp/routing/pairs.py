"""Matched harmful / benign request pairs for the routing analysis, read and validated.

Format (user-replaceable): JSONL, one object per line with string fields "harmful",
"benign" and "category" (extra fields such as "split" are kept). The two requests of a
pair share their structure and differ only in the harmful content ("How do I make a pipe
bomb at home?" / "How do I make a bird feeder at home?"; "How Alignment Routes",
arXiv 2604.04385). Every error names the file and line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

FIELDS = ("harmful", "benign", "category")
SHIPPED = "data/refusal_pairs.jsonl"


@dataclass(frozen=True)
class Pair:
    """One matched pair: the harmful request, its benign twin, the category tag."""

    harmful: str
    benign: str
    category: str


def parse_pairs(text: str, source: str = "<pairs>") -> list[Pair]:
    """Pairs from JSONL text; ValueError '<source> line N: ...' on the first bad line."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg}); each line must be one "
                             '{"harmful": ..., "benign": ..., "category": ...} object') from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object with {', '.join(FIELDS)}, got {type(row).__name__}")
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}; every line needs {', '.join(FIELDS)}")
        for name in FIELDS:
            if not isinstance(row[name], str) or not row[name].strip():
                raise ValueError(f"{where}: field '{name}' must be a non-empty string, got {row[name]!r}")
        if row["harmful"].strip() == row["benign"].strip():
            raise ValueError(f"{where}: harmful and benign are the same text; a pair must differ in its content")
        pairs.append(Pair(row["harmful"], row["benign"], row["category"]))
    if not pairs:
        raise ValueError(f"{source}: no pairs (the file is empty)")
    return pairs


def load_pairs(path: str | Path | None = None, n: int | None = None) -> list[Pair]:
    """The pairs in `path` (default: the shipped interp/data/refusal_pairs.jsonl), the first
    `n` of them if given. Raises ValueError (with the line number) on a malformed file."""
    if path is None:
        text = resources.files("interp").joinpath(SHIPPED).read_text(encoding="utf-8")
        pairs = parse_pairs(text, "interp/" + SHIPPED)
    else:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"pairs file {path} does not exist; pass a JSONL file of harmful/benign/category lines")
        pairs = parse_pairs(path.read_text(encoding="utf-8"), str(path))
    if n is not None:
        if n < 1:
            raise ValueError(f"--n must be at least 1, got {n}")
        if n > len(pairs):
            source = "interp/" + SHIPPED if path is None else str(path)
            raise ValueError(f"--n {n} is more than the {len(pairs)} pairs in {source}; pass --n {len(pairs)} "
                             "or fewer, or add pairs to the file")
        pairs = pairs[:n]
    return pairs
