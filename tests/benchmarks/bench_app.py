"""How long the explorer takes to build each run page, first open and reopened.

    python tests/benchmarks/bench_app.py --runs runs/tour [--repeats 3]

Opens every run directory (and steering-vector file) under `--runs` in Streamlit's AppTest,
the way `steerlens app --runs DIR` serves it with `?run=<name>`, and prints per run:
- `first`: the page as first opened in this process (run read from disk, typed result
  loaded, figures built; Streamlit's caches cold for this run),
- `again`: the median of `--repeats` reopenings (caches warm, what clicking between runs costs),
both as the server-side build time the page itself measures (`render_seconds`) and as the
wall time of the whole script run, next to the run list page in the same process as the
reference. The browser then draws the plotly figures (tens of ms each; see
tests/test_app_e2e.py). Asserts nothing. Target: every page under 2 s. Streamlit's
bare-mode warnings go to stderr (`2>/dev/null` hides them).

Because a shared machine's speed varies from minute to minute, every time is also given as
a ratio to a bare Streamlit page (a title and one line of text, `BARE`) timed in the same
process just before: `x bare` is what the explorer adds over Streamlit's own cost of a
script run, comparable between machines. ``--json FILE`` writes every number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MAIN = ROOT / "app" / "main.py"


def open_page(run: str | None) -> tuple[float, float | None, list[str]]:
    """(wall seconds, the page's own render_seconds, problems) of one script run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    if run is not None:
        at.query_params["run"] = run
    start = time.perf_counter()
    at.run()
    wall = time.perf_counter() - start
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    render = at.session_state["render_seconds"] if "render_seconds" in at.session_state else None
    return wall, render, problems


BARE = "import streamlit as st\nst.title('bare page')\nst.write('one line of text')\n"


def bare_seconds(repeats: int) -> float:
    """Median wall time of a script run of a bare Streamlit page (`BARE`), after one warm-up run."""
    import tempfile

    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare.py"
        script.write_text(BARE)
        times = []
        for _ in range(repeats + 1):
            at = AppTest.from_file(str(script), default_timeout=60)
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", required=True, help="folder of run directories (e.g. a tour's --out)")
    parser.add_argument("--repeats", type=int, default=3, help="reopenings per run (median reported)")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    args = parser.parse_args()
    root = Path(args.runs).resolve()
    if not root.is_dir():
        raise SystemExit(f"bench_app: {root} is not a folder; run `steerlens tour --quick --out {args.runs}` first")
    os.environ["STEERLENS_RUNS"] = str(root)

    from app.runs import scan_runs

    entries = [e for e in scan_runs(root) if not e.broken]
    if not entries:
        raise SystemExit(f"bench_app: no readable runs under {root}")
    list_wall, _, _ = open_page(None)
    bare = bare_seconds(args.repeats)
    list_again = statistics.median(open_page(None)[0] for _ in range(args.repeats))
    print(f"runs under {root}: {len(entries)}; bare Streamlit page {bare:.3f} s; run list page {list_wall:.2f} s "
          f"first (imports included), {list_again:.2f} s again = {list_again / bare:.1f}x bare")
    print(f"{'run':<36} {'first build':>11} {'first wall':>10} {'again build':>11} {'again wall':>10} {'x bare':>7}")
    worst, rows = 0.0, []
    for entry in entries:
        wall, render, problems = open_page(entry.name)
        again = [open_page(entry.name) for _ in range(args.repeats)]
        again_wall = statistics.median(w for w, _, _ in again)
        renders = [r for _, r, _ in again if r is not None]
        again_render = statistics.median(renders) if renders else float("nan")
        worst = max(worst, wall)
        note = f"  problems: {problems}" if problems else ""
        print(f"{entry.name:<36} {render or float('nan'):>10.2f}s {wall:>9.2f}s {again_render:>10.2f}s "
              f"{again_wall:>9.2f}s {again_wall / bare:>6.1f}x{note}")
        rows.append({"run": entry.name, "first_build_s": render, "first_wall_s": wall, "again_build_s": again_render,
                     "again_wall_s": again_wall, "again_x_bare": again_wall / bare, "problems": problems})
    print(f"slowest first open (wall): {worst:.2f} s; target < 2 s")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({"bare_s": bare, "list_first_s": list_wall, "list_again_s": list_again,
                                               "runs": rows}, indent=2))

if __name__ == "__main__":
    main()
