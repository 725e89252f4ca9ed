"""Prompt files: plain text (one prompt per line) or JSONL records.

The format is detected from the first non-empty line: if it starts with ``{`` the file is
JSONL, one JSON object per line, with at least a ``text`` field (task files add their own,
e.g. ``positive``/``negative``); otherwise every non-blank line is one prompt.

Plain-text lines lose only their line ending (``\\n`` or ``\\r\\n``); leading and trailing
spaces are kept because they change tokenization. Escapes are not interpreted: a line holding
a backslash followed by ``n`` stays those two characters, so write multi-line prompts as JSONL.
Blank (whitespace-only) lines are skipped in both formats. Files are UTF-8; a BOM is ignored.
Every problem is a `PromptFileError` naming the file and, where there is one, the line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


class PromptFileError(ValueError):
    """A prompt file is missing, empty, or has a bad line (message: ``file:line: what``)."""


def read_prompts(path: str | Path) -> list[str]:
    """The prompts in a plain-text or JSONL file (the ``text`` field of each JSONL record)."""
    return [record["text"] for record in read_records(path)]


def read_records(path: str | Path, required: Sequence[str] = ("text",)) -> list[dict]:
    """The records in a prompt file; each has the ``required`` fields.

    A plain-text line becomes ``{"text": line}``, so a plain-text file only satisfies
    ``required=("text",)`` (or nothing).
    """
    path = Path(path)
    lines = _read_lines(path)
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise PromptFileError(f"{path}: no prompts (the file is empty or has only blank lines)")
    if numbered[0][1].lstrip().startswith("{"):
        records = [_parse_json_line(path, n, line) for n, line in numbered]
    else:
        extra = [name for name in required if name != "text"]
        if extra:
            raise PromptFileError(
                f"{path}: plain-text prompts have no fields {extra}; "
                "use JSONL with one object per line"
            )
        return [{"text": line} for _, line in numbered]
    for (n, _), record in zip(numbered, records):
        missing = [name for name in required if name not in record]
        if missing:
            raise PromptFileError(f"{path}:{n}: missing required field(s) {missing}")
        if "text" in record and not isinstance(record["text"], str):
            kind = type(record["text"]).__name__
            raise PromptFileError(f"{path}:{n}: field 'text' must be a string, got {kind}")
        if record.get("text") == "":
            raise PromptFileError(f"{path}:{n}: field 'text' is empty")
    return records


def _read_lines(path: Path) -> list[str]:
    """The file's lines without line endings; BOM dropped, bad UTF-8 reported."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptFileError(f"{path}: prompt file not found") from None
    except IsADirectoryError:
        raise PromptFileError(f"{path}: is a directory, not a prompt file") from None
    except OSError as e:
        raise PromptFileError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise PromptFileError(f"{path}:{line}: not valid UTF-8 (byte {e.start})") from None
    # split on \n only: str.splitlines would also split on \x0b, \x1c, U+2028, ... inside prompts
    return [line.removesuffix("\r") for line in text.split("\n")]


def _parse_json_line(path: Path, n: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise PromptFileError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        kind = type(record).__name__
        raise PromptFileError(f"{path}:{n}: expected a JSON object, got {kind}")
    return record
