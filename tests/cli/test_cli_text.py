"""The readable (non --json) summary: laid out by shape, never printed as Python reprs."""

import pytest

from interp.cli.text import summary_lines


def test_values_are_laid_out_by_shape():
    summary = {"n": 3, "share": 0.123456, "off": None, "ok": True,
               "gate": {"layer": 1, "head": 2},
               "timings": {f"step{i}": i / 3 for i in range(8)},  # too long for one line
               "rows": [{"name": "a", "value": 1.5}, {"name": "bb", "value": -10.25, "extra": "x"}],
               "short": [1, 2, 3], "long": list(range(100)),
               "warnings": ["a long warning line " * 5, "another"],
               "nested": {"inner": {"x": 1}, "y": [1, 2]}}
    lines = summary_lines(summary)
    text = "\n".join(lines)
    assert lines[:5] == ["n: 3", "share: 0.1235", "off: -", "ok: yes", "gate: layer=1, head=2"]
    assert "timings:\n  step0  0\n  step1  0.3333" in text
    assert "rows:\n  name   value  extra\n  a        1.5  -\n  bb    -10.25  x" in text
    assert "short: 1, 2, 3" in text and "(100 values; see --json)" in text
    assert "warnings:\n  - a long warning line" in text and "\n  - another" in text
    assert "nested:\n  inner: x=1\n  y: 1, 2" in text
    assert not any(c in text for c in "{}[]'")


def test_long_tables_show_the_first_rows_and_say_how_many_more():
    lines = summary_lines({"heads": [{"i": i} for i in range(25)]}, rows=4)
    assert lines == ["heads:", "  i", "  0", "  1", "  2", "  3", "  ... 21 more rows (see --json)"]


@pytest.mark.usefixtures("one_thread")
def test_routing_without_json_prints_a_readable_summary(tiny_llama_folder, tmp_path, capsys):
    from interp.cli import main

    args = ["--n=8", "--top-k=3", "--verify=4", "--permutations=200", "--bootstrap=20", "--gen-tokens=2"]
    assert main(["routing", "--model", str(tiny_llama_folder), *args, "--steps", "screen,interchange",
                 "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "{}[]'"), out  # no dict or list reprs
    lines = out.splitlines()
    assert lines[0] == "gate:" and lines[1].split()[0] == "head" and lines[2].split()[0] == "necessity_pct"
    top = lines.index("top heads (by necessity):")
    assert lines[top + 1].split()[:3] == ["head", "necessity_pct", "sufficiency_pct"]
    necessity = [float(line.split()[1]) for line in lines[top + 2: top + 12]]
    assert necessity == sorted(necessity, reverse=True) and lines[top + 2].split()[0] == lines[1].split()[1]
    assert lines[top + 12] == "  ... 2 more rows (see --json)"  # 12 heads in the tiny model
    assert "timings (s):" in lines and "amplifiers (knockout of the gate): -" in lines
    assert lines[-1] == f"run saved to {tmp_path / 'run'}"
