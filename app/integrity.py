"""Cheap integrity checks of the files a run lists, so the run list can flag damaged runs.

A safetensors file is 8 bytes (little-endian u64 ``n``), an ``n``-byte JSON header naming each
tensor's ``data_offsets`` [begin, end) into the data that follows, then the data. A file is
whole when its size is exactly ``8 + n + max(end)``: a truncated copy, an interrupted write or
an empty file fails that check without reading any tensor data (format:
https://github.com/huggingface/safetensors#format). Other files a manifest names are only
required to be non-empty.

Results are cached by (path, size, mtime_ns): rescanning a folder of unchanged runs reads
one stat per file, and a file rewritten in place is checked again.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

MAX_HEADER = 100 * 2**20  # safetensors' own limit on the JSON header


def file_damage(path: Path) -> str | None:
    """Why the file at `path` is damaged (one line naming it), or None when it looks whole.

    A missing or unreadable file is damage too ("cannot read ..."). Never raises."""
    try:
        stat = path.stat()
    except OSError as e:
        return f"cannot read {path.name} ({e.strerror or e})"
    return _damage(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4096)
def _damage(path: str, size: int, mtime_ns: int) -> str | None:
    name = Path(path).name
    if size == 0:
        return f"{name} is empty (0 bytes)"
    if not name.endswith(".safetensors"):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{name} is truncated ({size} bytes: shorter than the 8-byte header length)"
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER or 8 + n > size:
                return f"{name} is truncated ({size} bytes; its header alone needs {8 + n})"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as e:
        return f"{name} has an unreadable header ({type(e).__name__}: {e})"
    if not isinstance(header, dict):
        return f"{name} has an unreadable header (not a JSON object)"
    ends = [entry.get("data_offsets", [0, 0])[1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict)]
    expected = 8 + n + max((int(e) for e in ends), default=0)
    if size < expected:
        return f"{name} is truncated ({size:,} of {expected:,} bytes)"
    if size > expected:
        return f"{name} has {size - expected:,} bytes after its last tensor (damaged or not safetensors)"
    return None


def run_damage(run: Path, files: list[str]) -> str | None:
    """The first damaged file among a run's listed files (relative paths), or None."""
    for rel in files:
        problem = file_damage(run / rel)
        if problem is not None:
            return problem
    return None
