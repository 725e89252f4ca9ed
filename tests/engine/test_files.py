"""Safetensors files get the same permissions as the JSON beside them (not 0600)."""

from __future__ import annotations

import os

import torch

from interp.engine.files import save_safetensors


def test_safetensors_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_safetensors({"a": torch.zeros(2)}, tmp_path / "a.safetensors", metadata={"k": "v"})
        (tmp_path / "b.json").write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644
