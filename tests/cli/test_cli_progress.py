"""Progress on a stderr that is not a terminal: plain newline-terminated lines, never '\r' frames."""

import io
import json
import sys

import pytest
from tqdm.auto import tqdm

from interp.cli.progress import LineFrames, line_progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run_bar(stream, clock, steps, seconds_per_step, **kw):
    with tqdm(total=steps, desc="work", file=stream, mininterval=0, miniters=1, **kw) as bar:
        for _ in range(steps):
            clock.now += seconds_per_step
            bar.update()


@pytest.mark.parametrize("leave", [True, False])
def test_a_bar_prints_its_first_frame_one_line_per_interval_and_its_last(leave):
    out, clock = io.StringIO(), Clock()
    lines_out = LineFrames(out, interval=30, clock=clock)
    _run_bar(lines_out, clock, steps=100, seconds_per_step=1.0, leave=leave)
    print("after", file=lines_out)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("after\n")
    lines = text.splitlines()
    assert all(line.startswith("work: ") for line in lines[:-1]) and lines[-1] == "after"
    counts = [int(line.split("|")[2].split("/")[0]) for line in lines[:-1]]
    assert counts == [0, 30, 60, 90, 100]  # first frame, every 30 s, the last one at close


def test_bars_one_after_another_each_get_their_first_and_last_lines_and_other_text_passes():
    out, clock = io.StringIO(), Clock()
    lines_out = LineFrames(out, interval=30, clock=clock)
    lines_out.write("a warning\n")
    _run_bar(lines_out, clock, steps=5, seconds_per_step=1.0, leave=False)
    _run_bar(lines_out, clock, steps=5, seconds_per_step=1.0, leave=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == "a warning" and len(lines) == 5 and "\r" not in out.getvalue()
    assert [line.split("|")[2].split("/")[0].strip() for line in lines[1:]] == ["0", "5", "0", "5"]


def test_line_progress_applies_only_when_stderr_is_not_a_terminal(monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    with line_progress():
        assert isinstance(sys.stderr, LineFrames)
        for _ in tqdm(range(3), desc="piped"):
            pass
    assert sys.stderr is piped and "\r" not in piped.getvalue() and piped.getvalue().count("piped: ") == 2

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stderr", Terminal())
    with line_progress():
        assert not isinstance(sys.stderr, LineFrames)


@pytest.mark.usefixtures("one_thread")
def test_cli_with_json_and_piped_stderr_shows_progress_lines(tiny_llama_folder, tmp_path, capsys):
    from interp.cli import main

    args = ["--n=8", "--permutations=200", "--bootstrap=20", "--method", "exact", "--steps", "interchange"]
    assert main(["routing", "--model", str(tiny_llama_folder), *args, "--out", str(tmp_path / "run"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["gate"] is not None  # stdout: the JSON document alone
    assert "\r" not in captured.err
    bar = [line for line in captured.err.splitlines() if line.startswith("exact interchange: ")]
    assert bar[0].split("|")[0].strip().endswith("0%") and bar[-1].split("|")[0].strip().endswith("100%")
