"""The tour's routing line names the gate's family-wise p next to its per-head p (issue 31)."""

import json

import pytest

from interp.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_routing_tour_line_gives_the_family_wise_p(tiny_llama_folder, tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--only", "routing", "--model", str(tiny_llama_folder), "--out", str(out)]) == 0
    (row,) = json.loads((out / "tour.json").read_text())["rows"]
    assert row["status"] == "ok", row
    assert "(p=" in row["key"] and "family-wise p=" in row["key"] and "heads measured exactly" in row["key"]
