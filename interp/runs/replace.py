"""Which folders `Result.save(..., overwrite=True)` may replace: an empty one, or a run of the
same analysis (never another analysis's run, nor a folder of runs or other files)."""

from __future__ import annotations

import json
from pathlib import Path


def _check_replaceable(folder: Path, analysis: str) -> None:
    """ValueError unless `folder` is empty or holds a run of `analysis` (overwriting replaces
    the whole folder: another analysis's run, or a folder of runs, would be lost)."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            other = json.loads(manifest.read_text(encoding="utf-8")).get("analysis")
        except (OSError, ValueError):
            other = None
        if other not in (None, analysis):
            raise ValueError(f"{folder} holds a {other} run; saving this {analysis} run there would replace it: "
                             "pass another --out")
    elif any(folder.iterdir()):
        raise ValueError(f"{folder} holds files that are not a steerlens run (a folder of runs?); saving this "
                         f"{analysis} run there would replace them all: pass a new folder as --out")
