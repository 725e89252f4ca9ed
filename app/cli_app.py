"""`steerlens app`: start the Streamlit explorer over a folder of runs."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"


def command(runs: str, port: int) -> list[str]:
    """The streamlit command line that serves the explorer."""
    return [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--", "--runs", runs]


def run_app(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    runs = Path(args.runs).expanduser()
    if runs.exists() and not runs.is_dir():
        raise ValueError(f"--runs {runs} is a file; give the folder that holds the run directories")
    print(f"steerlens explorer on http://localhost:{args.port} (runs: {runs.resolve()}); Ctrl+C stops it",
          file=sys.stderr)
    server = subprocess.Popen(command(str(runs.resolve()), args.port))
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # stopping us stops the server
    try:
        return server.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:  # Ctrl+C reaches both; anything else: stop it and wait
            server.terminate()
            server.wait(timeout=30)


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'app': 'browse saved runs and steer a model live in the browser (Streamlit)',
}


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "app", help=COMMANDS["app"],
        description="Start the steerlens explorer: every run under --runs with a page per analysis, "
                    "and a live steering playground.")
    parser.add_argument("--runs", default="runs", metavar="DIR", help="folder of run directories (default: ./runs)")
    parser.add_argument("--port", type=int, default=8501, metavar="N", help="port to serve on (default: 8501)")
    parser.set_defaults(func=run_app)
