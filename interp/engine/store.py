"""Activation store: capture sites over a prompt set into sharded safetensors, resumable.

Layout of a store directory:

    index.json               sites, positions, model, prompt count and hash, shard list
    shard-00000.safetensors  one per batch: each site as rows [n_rows, ...], plus
                             `prompt_index` [n_rows] and `position` [n_rows] (real position)

Rows are tokens (positions="all": every real token of every prompt) or one row per prompt
and index (positions="last" or a list of ints). Each shard is written to a temp file and
renamed, then the index is rewritten the same way, so an interrupted capture (even by
`kill -9`) resumes where it stopped: batches already in a shard are skipped, and the
result is the same files an uninterrupted run writes. Several processes (torchrun) share
the batches and write one store (`interp.engine.shards`, `interp.engine.distributed`).
A store is only resumed with the same sites, positions, prompts and batch size and the same
provenance (`interp.engine.provenance`: model and its sha, dtypes, BOS policy, chat
template, the prompts' token ids), never silently mixed: a resume that differs is refused
before any batch runs, naming each field and both values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .batching import BatchSizer
from .distributed import SINGLE, Ranks, check_enough_items
from .hooks import Positions
from .provenance import provenance
from .shards import INDEX, ShardPlan, StoreError, open_or_create, run_plan, write_json_atomic
from .sites import ExpertSelection, has_key_axis

__all__ = ["INDEX", "ActivationStore", "StoreError", "capture_to_store", "open_or_create", "prompts_hash",
           "write_json_atomic"]


def prompts_hash(prompts: Sequence[str]) -> str:
    """sha256 of a prompt list, recorded in a store's index so a resume checks its input."""
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(prompt.encode("utf-8") + b"\0")
    return digest.hexdigest()


@dataclass
class ActivationStore:
    """A finished (or partial) store on disk; iterate shards or load one site whole."""

    path: Path

    @property
    def index(self) -> dict:
        file = self.path / INDEX
        if not file.is_file():
            raise StoreError(f"{self.path} is not an activation store (no {INDEX})")
        return json.loads(file.read_text())

    @property
    def complete(self) -> bool:
        index = self.index
        return sum(len(s["prompts"]) for s in index["shards"]) == index["n_prompts"]

    def shards(self) -> Iterator[dict[str, torch.Tensor]]:
        for shard in self.index["shards"]:
            yield load_file(self.path / shard["file"])

    def load(self, site: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values [rows, ...], prompt_index [rows], position [rows]) sorted by prompt, position."""
        values, prompts, positions = [], [], []
        for shard in self.shards():
            if site not in shard:
                raise StoreError(f"site '{site}' not in store; it has {self.index['sites']}")
            values.append(shard[site])
            prompts.append(shard["prompt_index"])
            positions.append(shard["position"])
        prompt_index, position = torch.cat(prompts), torch.cat(positions)
        order = torch.argsort(prompt_index * (position.max() + 1) + position)
        return torch.cat(values)[order], prompt_index[order], position[order]


def capture_to_store(
    model,
    prompts: Sequence[str],
    sites: Sequence[str],
    path: str | Path,
    positions: Positions = "all",
    *,
    chat: bool = False,
    dtype: torch.dtype | None = torch.float32,
    batch_size: int | str | None = None,
    progress: bool = True,
    ranks: Ranks = SINGLE,
) -> ActivationStore:
    """Capture `sites` for every prompt into a store at `path`, resuming if it exists.

    Batch j of the length-sorted plan becomes shard j (`interp.engine.shards`), so a
    resumed or a data-parallel run (`ranks`, one process per rank, from
    `interp.engine.distributed.join`) writes the same files as one uninterrupted process.
    `batch_size` "auto" reuses the size a resumed store was started with. Raises
    StoreError for a directory holding another capture, ValueError for more ranks than
    prompts."""
    path = Path(path)
    prompts = list(prompts)
    sites = list(dict.fromkeys(sites))
    for name in sites:
        model.site(name)
    if not prompts:
        raise ValueError("no prompts to capture")
    header = {
        "sites": sites,
        "positions": positions if isinstance(positions, str) else list(positions),
        "chat": chat,
        "n_prompts": len(prompts),
        "prompts_sha256": prompts_hash(prompts),
        **provenance(model, prompts, chat=chat, dtype=dtype),
    }
    check_enough_items(len(prompts), ranks)
    plan = ShardPlan.open(path, header, [len(p) for p in prompts], batch_size=batch_size, device=model.device,
                          ranks=ranks)

    sizer = BatchSizer(len(plan.batches[0]))  # out of memory: a shard runs in halves, and so do the next

    def batch(rows: list[int]) -> dict[str, torch.Tensor]:
        _, cache = model.run_with_cache([prompts[i] for i in rows], sites, positions, chat=chat,
                                        to_cpu=True, dtype=dtype, logits=None, batch_size=sizer)
        return _rows(cache, sites, rows, positions)

    run_plan(plan, batch, progress=progress)
    return ActivationStore(path)


def _rows(cache, sites, rows: list[int], positions) -> dict[str, torch.Tensor]:
    """Flatten a batch cache into rows with their prompt index and real position."""
    mask = cache.attention_mask.bool()  # [b, P]
    n_real = mask.sum(-1)
    out: dict[str, torch.Tensor] = {}
    for name in sites:
        value = cache[name]
        if isinstance(value, ExpertSelection):
            parts = {f"{name}.ids": value.ids, f"{name}.weights": value.weights}
        else:
            parts = {name: value}
        for key, tensor in parts.items():
            if has_key_axis(name):
                raise StoreError(f"'{name}' has a key axis that differs per prompt; capture it with run_with_cache")
            if positions == "all":
                out[key] = tensor[mask].contiguous()
            else:
                out[key] = tensor.reshape(-1, *tensor.shape[(1 if positions == "last" else 2):]).contiguous()
    prompt_ids = torch.tensor(rows)
    if positions == "all":
        real = (mask.long().cumsum(-1) - 1)[mask]
        out["prompt_index"] = prompt_ids[:, None].expand_as(mask)[mask].contiguous()
        out["position"] = real.contiguous()
    elif positions == "last":
        out["prompt_index"] = prompt_ids
        out["position"] = n_real - 1
    else:
        idx = torch.tensor(list(positions))
        out["prompt_index"] = prompt_ids[:, None].expand(-1, len(idx)).reshape(-1).contiguous()
        out["position"] = torch.where(idx[None, :] < 0, idx[None, :] + n_real[:, None], idx[None, :]).reshape(-1)
    return out
