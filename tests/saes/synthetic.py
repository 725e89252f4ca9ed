"""Activations from a known sparse dictionary, written as an activation store."""

from __future__ import annotations

from pathlib import Path

import torch

from interp.engine.files import save_safetensors
from interp.engine.store import open_or_create, write_json_atomic

SITE = "blocks.0.hook_resid_post"


def sparse_dictionary(d: int = 32, atoms: int = 48, n: int = 8192, active: int = 3, seed: int = 0):
    """(dictionary [atoms, d] unit rows, samples [n, d]): each sample is a positive
    combination of `active` random atoms."""
    g = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(atoms, d, generator=g)
    dictionary /= dictionary.norm(dim=1, keepdim=True)
    idx = torch.stack([torch.randperm(atoms, generator=g)[:active] for _ in range(n)])
    coef = torch.zeros(n, atoms).scatter_(1, idx, 0.5 + torch.rand(n, active, generator=g))
    return dictionary, coef @ dictionary


def write_store(path: Path, samples: torch.Tensor, shards: int = 4) -> Path:
    index = open_or_create(path, {"sites": [SITE], "positions": "step_ends", "n_prompts": shards})
    for i, part in enumerate(samples.chunk(shards)):
        name = f"shard-{i:05d}.safetensors"
        save_safetensors({SITE: part.contiguous(), "prompt_index": torch.full((len(part),), i),
                          "position": torch.arange(len(part)), "step_index": torch.arange(len(part))}, path / name)
        index["shards"].append({"file": name, "prompts": [i]})
    write_json_atomic(index, path / "index.json")
    return path
