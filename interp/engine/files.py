"""Writing safetensors files the way the rest of a run is written.

`safetensors.torch.save_file` creates its file with mode 0600 whatever the umask, so a
vector or run shared with another user (or read by an explorer running as another user)
would be unreadable while the JSON and CSV beside it are not. `save_safetensors` writes
through it and then gives the file the mode an ordinary `open()` would have.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import save_file


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """`save_file(tensors, path, metadata)`, then mode 0666 & ~umask (0644 under umask 022)."""
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, 0o666 & ~_umask())
