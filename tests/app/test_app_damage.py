"""Issue 36, broken items: damaged runs flagged while scanning, a damaged run in the comparison,
vectors saved inside run folders, ``?run=`` naming nothing, the lens hover."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from apptest import open_app, problems
from test_app_runs import copy_runs, saved_runs

from app.integrity import file_damage
from app.runs import scan_runs
from steering.vectors import SteeringVector

pytestmark = pytest.mark.usefixtures("one_thread")


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_safetensors_check_reads_sizes_and_header_only(tmp_path):
    good = saved_runs() / "dla-1" / "tensors.safetensors"
    assert file_damage(good) is None
    size = good.stat().st_size
    for keep, reason in ((size - 1, "truncated"), (20, "truncated"), (4, "truncated"), (0, "empty")):
        bad = tmp_path / f"t{keep}.safetensors"
        bad.write_bytes(good.read_bytes()[:keep])
        assert reason in file_damage(bad), keep
    extra = tmp_path / "extra.safetensors"
    extra.write_bytes(good.read_bytes() + b"\0")
    assert "after its last tensor" in file_damage(extra)
    empty_json = tmp_path / "fields.json"
    empty_json.write_text("")
    assert "empty" in file_damage(empty_json)


def test_truncated_or_empty_tensor_file_marks_the_run_broken_with_the_reason(tmp_path):
    root = copy_runs(tmp_path / "runs")
    truncate(root / "dla-1" / "tensors.safetensors", 100)
    (root / "lens-1" / "tensors.safetensors").write_bytes(b"")
    entries = {e.name: e for e in scan_runs(root)}
    assert "tensors.safetensors is truncated" in entries["dla-1"].error
    assert "tensors.safetensors is empty" in entries["lens-1"].error
    assert not entries["sinks-1"].broken
    # rewritten in place (new mtime and size): checked again, not answered from the cache
    shutil.copy(saved_runs() / "dla-1" / "tensors.safetensors", root / "dla-1" / "tensors.safetensors")
    assert not {e.name: e for e in scan_runs(root)}["dla-1"].broken


def test_run_list_flags_a_damaged_run_with_its_reason(monkeypatch, tmp_path):
    root = copy_runs(tmp_path / "runs")
    truncate(root / "dla-1" / "tensors.safetensors", 100)
    at = open_app(monkeypatch, root)
    assert not at.exception
    (listing,) = [d.value for d in at.dataframe if "status" in d.value.columns]
    status = dict(zip(listing["run"], listing["status"]))
    assert status["dla-1"].startswith("broken: tensors.safetensors is truncated") and status["lens-1"] == "ok"
    assert any(b.label == "⚠ dla-1" for b in at.button)
    at = open_app(monkeypatch, root, run="dla-1")
    assert any("truncated" in e.value for e in at.error) and not at.exception


def test_comparing_with_a_run_damaged_after_listing_shows_one_line_and_the_list_stays(monkeypatch, tmp_path):
    root = copy_runs(tmp_path / "runs")
    shutil.copytree(root / "dla-1", root / "dla-2")
    at = open_app(monkeypatch, root)
    truncate(root / "dla-2" / "tensors.safetensors", 100)  # after the scan: the listing still says ok
    at.toggle(key="compare:on").set_value(True).run()
    at.selectbox(key="compare:a").set_value("dla-1").run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("Cannot compare these runs: SafetensorError") and "\n" not in error
    assert any(b.label == "dla-2" for b in at.button)  # the "Open a run" list is still drawn
    at.button(key="rescan").click().run()
    assert any(b.label == "⚠ dla-2" for b in at.button)  # and the rescan flags it
    assert "dla-2" not in at.selectbox(key="compare:a").options


@pytest.fixture(scope="module")
def nested_root(tmp_path_factory) -> Path:
    """saved runs in a tour folder, with a vector saved inside the dla run (as the tour's skills step does)."""
    root = tmp_path_factory.mktemp("nested") / "runs"
    shutil.copytree(saved_runs(), root / "tour-1")
    vector = SteeringVector.load(saved_runs() / "v.safetensors")
    vector.save(root / "tour-1" / "dla-1" / "direction-0.safetensors")
    vector.save(root / "sinks-top.safetensors")
    shutil.copytree(saved_runs() / "sinks-1", root / "sinks-1")
    vector.save(root / "sinks-1" / "inside.safetensors")
    (root / "sinks-1" / "broken.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{}")
    return root


def test_vectors_inside_run_folders_are_listed_after_their_run(nested_root):
    entries = {e.name: e for e in scan_runs(nested_root)}
    inner = entries["tour-1/dla-1/direction-0.safetensors"]
    assert inner.kind == "vector" and inner.parent == "tour-1/dla-1" and not inner.broken
    assert entries["sinks-1/inside.safetensors"].parent == "sinks-1"
    assert "truncated" in entries["sinks-1/broken.safetensors"].error  # a header promising more than the file
    assert "tour-1/dla-1/tensors.safetensors" not in entries  # a run's own tensors are results, not vectors
    names = list(entries)
    assert names.index("tour-1/dla-1/direction-0.safetensors") == names.index("tour-1/dla-1") + 1


def test_a_vector_inside_a_run_opens_by_query_parameter(monkeypatch, nested_root):
    at = open_app(monkeypatch, nested_root, run="tour-1/dla-1/direction-0.safetensors")
    assert not problems(at)
    assert "tour-1/dla-1/direction-0.safetensors" in at.title[0].value
    assert any("Norm of the direction" in json.loads(c.proto.spec)["layout"]["title"]["text"]
               for c in at.get("plotly_chart"))


def test_a_run_parameter_naming_nothing_says_so_in_one_line(monkeypatch, nested_root):
    at = open_app(monkeypatch, nested_root, run="tour-1/nope")
    assert at.title[0].value == "steerlens runs" and not at.exception
    (warning,) = [w.value for w in at.warning]
    assert "No run or vector file named 'tour-1/nope'" in warning and "\n" not in warning
    at.run()  # said once, not on every later rerun
    assert not at.warning


def test_the_playground_lists_a_vector_inside_a_run_once(nested_root):
    from app.vectors import vectors_in_runs

    labels = [c.label for c in vectors_in_runs(scan_runs(nested_root), width=None)]
    assert labels.count("run tour-1/dla-1 · direction-0.safetensors") == 1
    assert "run sinks-1 · inside.safetensors" in labels and "file sinks-top.safetensors" in labels
    assert not any("broken" in label for label in labels)


def test_lens_hover_over_the_click_markers_shows_the_top_5(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="lens-1")
    (fig,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "lens-1:lens" in c.proto.id]
    grid, markers = fig["data"][0], fig["data"][1]
    assert grid.get("hoverinfo") == "skip" and markers["hovertemplate"] == "%{hovertext}<extra></extra>"
    first = markers["hovertext"][0]
    assert first.startswith("embed") and "1. " in first and "5. " in first and "target" in first
    assert not any(str(v).startswith("[") for v in markers["hovertext"])
