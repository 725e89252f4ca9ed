"""The documented tour transcript (docs/getting-started.md, "The tour"; it moved there from the README)
lists every tour step, in the tour's order (it had drifted to 8 of 12)."""

from pathlib import Path

import interp.cli.tour_steps as tour_steps

ROOT = Path(__file__).resolve().parents[2]


def _transcript() -> list[str]:
    text = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    section = text.split("## The tour", 1)[1]
    return section.split("```\n", 2)[1].splitlines()  # the first code block of the section


def _rows(lines: list[str]) -> list[str]:
    """First-column names of the table's rows (continuation lines start with spaces)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("analysis ")) + 2  # header, dashes
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        if not line.startswith(" "):
            rows.append(line.split()[0])
    return rows


def test_documented_tour_transcript_lists_every_step_in_order():
    lines = _transcript()
    assert lines[0].startswith("steerlens quick tour of ")
    assert _rows(lines) == list(tour_steps.STEPS), "docs/getting-started.md's tour transcript is stale: paste a fresh " \
                                                   "`steerlens tour --quick` output"
