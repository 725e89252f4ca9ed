"""Saving over a folder replaces it whole, so it must hold nothing but a run of the same analysis."""

from __future__ import annotations

import json

import pytest

from interp.runs.results import load_run


def _run(tmp_path):
    from interp.dla.lens import logit_lens
    from tiny import tiny_model

    return logit_lens(tiny_model("llama"), ["The cat sat"], positions="last")


def test_a_run_of_the_same_analysis_is_replaced_and_others_are_refused(tmp_path):
    result = _run(tmp_path)
    same = result.save(tmp_path / "lens", overwrite=True)
    result.save(same, overwrite=True)  # a rerun into its own folder
    assert load_run(same).analysis == "lens"
    other = tmp_path / "dla-run"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"analysis": "dla"}))
    with pytest.raises(ValueError, match="holds a dla run; saving this lens run there would replace it"):
        result.save(other, overwrite=True)
    assert sorted(p.name for p in other.iterdir()) == ["manifest.json"]
    folder = tmp_path / "runs"
    (folder / "tour").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a steerlens run"):
        result.save(folder, overwrite=True)
    assert (folder / "tour").is_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_run(result.save(empty, overwrite=True)).analysis == "lens"
