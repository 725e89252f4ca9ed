"""Checkpoints of a long screen: finished chunks of pairs on disk, reused after an interruption.

Each stage ("atp", "exact") saves every finished chunk of pairs as
`<dir>/<stage>-<key>-<chunk>.safetensors`, where `key` hashes everything the numbers depend
on (model, tokens, heads, alignment, chunking). A rerun with the same inputs finds the
finished chunks and computes only the rest; a rerun with different inputs has another key
and starts afresh, never mixing results. Files are written to a temporary name and renamed,
so a chunk file is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from ...engine.files import save_safetensors


def fingerprint(*parts) -> str:
    """A short hash of JSON-able parts and tensors."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            digest.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class Checkpoint:
    """Chunk store under `directory` (None: a no-op store that keeps nothing)."""

    def __init__(self, directory: str | Path | None):
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None:
            if self.directory.exists() and not self.directory.is_dir():
                raise ValueError(f"checkpoint_dir {self.directory} is a file; give a folder")
            self.directory.mkdir(parents=True, exist_ok=True)
        self.reused = 0

    def _path(self, stage: str, key: str, chunk: int) -> Path:
        return self.directory / f"{stage}-{key}-{chunk:05d}.safetensors"

    def load(self, stage: str, key: str, chunk: int) -> dict[str, torch.Tensor] | None:
        if self.directory is None:
            return None
        path = self._path(stage, key, chunk)
        if not path.is_file():
            return None
        self.reused += 1
        return load_file(str(path))

    def save(self, stage: str, key: str, chunk: int, tensors: dict[str, torch.Tensor]) -> None:
        if self.directory is None:
            return
        path = self._path(stage, key, chunk)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
