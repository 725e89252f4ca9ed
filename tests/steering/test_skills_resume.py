"""Skill-basis pooling shares the store's planned shards: interrupted at the worst instant
(a shard renamed but not yet listed, what `kill -9` can leave) and resumed, it writes the
same files as an uninterrupted run."""

from __future__ import annotations

import pytest
from tiny import tiny_model

import interp.engine.shards as shards
from steering.skills import pool_to_store

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = [f"text number {i} " * (1 + i % 3) for i in range(9)]


class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it."""


def test_pooling_resumed_after_an_unlisted_shard_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    model = tiny_model("llama")
    pool_to_store(model, TEXTS, [1], tmp_path / "ref", batch_size=4, progress=False)
    write_json = shards.write_json_atomic

    def list_or_die(obj, path):
        if len(obj.get("shards", [])) == 2:
            raise Killed
        write_json(obj, path)

    monkeypatch.setattr(shards, "write_json_atomic", list_or_die)
    with pytest.raises(Killed):
        pool_to_store(model, TEXTS, [1], tmp_path / "s", batch_size=4, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "s" / shards.shard_name(1)).is_file()  # written, not listed
    pool_to_store(model, TEXTS, [1], tmp_path / "s", batch_size="auto", resume=True, progress=False)
    files = {p.name: p.read_bytes() for p in sorted((tmp_path / "s").iterdir())}
    assert files == {p.name: p.read_bytes() for p in sorted((tmp_path / "ref").iterdir())}
