"""Progress bars on a stderr that is not a terminal (a log file, a pipe): plain lines.

tqdm redraws a bar in place by writing each frame after a carriage return; in a file that
makes one long line of frames. While a command runs with stderr not a terminal,
`interp.cli.main` hands tqdm (which writes to `sys.stderr`) a `LineFrames` stream
(`line_progress()`), so every bar of every analysis, wherever it is made, prints instead:

    AtP screen:   0%|          | 0/120 [00:00<?, ?pair/s]
    AtP screen:  41%|████▏     | 49/120 [00:30<00:43,  1.63pair/s]
    AtP screen: 100%|██████████| 120/120 [01:13<00:00,  1.63pair/s]

that is, a bar's first frame, then at most one frame every `interval` seconds (30), then
its last frame when it closes, each ending in a newline. Text that is not a bar frame
passes through unchanged. On a terminal nothing changes (tqdm redraws in place).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

INTERVAL = 30.0  # seconds between two lines of the same bar


class LineFrames:
    """A text stream for tqdm that turns its carriage-return frames into newline-terminated lines.

    `stream`: where lines and other text go; `interval`: least seconds between two lines of
    one bar (the first and last frames are always written); `clock`: seconds (tests pass a
    fake one). A bar is told from the next by its description (the text before ': ') and
    by tqdm clearing or ending it."""

    def __init__(self, stream: TextIO, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self._bar: str | None = None  # description of the bar being drawn, None between bars
        self._last = 0.0  # clock at its last written line
        self._pending: str | None = None  # its newest frame not written yet

    def write(self, text: str) -> int:
        head, *frames = str(text).split("\r")
        if head:
            after_bar = self._bar is not None
            self._end_bar()
            if not (head == "\n" and after_bar and not frames):  # tqdm ends a bar it keeps with a newline:
                self.stream.write(head)  # its line has one already
        for frame in frames:
            frame = frame.rstrip()
            if frame:
                self._frame(frame)
            else:  # tqdm clears a bar it does not keep (leave=False)
                self._end_bar()
        return len(text)

    def _frame(self, frame: str) -> None:
        bar = frame.split(": ", 1)[0] if ": " in frame else ""
        now = self.clock()
        if bar != self._bar:
            self._end_bar()
            self._bar = bar
        elif now - self._last < self.interval:
            self._pending = frame
            return
        self._line(frame, now)

    def _line(self, frame: str, now: float) -> None:
        self.stream.write(frame + "\n")
        self._last, self._pending = now, None

    def _end_bar(self) -> None:
        if self._pending is not None:
            self._line(self._pending, self.clock())
        self._bar = None

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):  # encoding, fileno, ...: those of the stream
        return getattr(self.stream, name)


@contextlib.contextmanager
def line_progress(interval: float = INTERVAL) -> Iterator[None]:
    """Within the block, bars drawn on a `sys.stderr` that is not a terminal print as lines."""
    stderr = sys.stderr
    if stderr is None or (hasattr(stderr, "isatty") and stderr.isatty()):
        yield
        return
    sys.stderr = lines = LineFrames(stderr, interval)
    try:
        yield
    finally:
        lines._end_bar()
        sys.stderr = stderr
