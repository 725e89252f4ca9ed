"""`steerlens app`: start the Streamlit explorer over a folder of runs."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"


def command(runs: str, port: int, address: str = "127.0.0.1", allow_any_model: bool = False) -> list[str]:
    """The streamlit command line that serves the explorer on `address` (loopback by default)."""
    return [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--", "--runs", runs, "--address", address, *(["--allow-any-model"] if allow_any_model else [])]


def run_app(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    runs = Path(args.runs).expanduser()
    if runs.exists() and not runs.is_dir():
        raise ValueError(f"--runs {runs} is a file; give the folder that holds the run directories")
    from .access import is_loopback

    address = args.address.strip()
    if not address:
        raise ValueError("--address is empty; give 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    _check_listen(address, args.port)
    if not runs.is_dir():
        raise ValueError(f"--runs {runs} does not exist; give the folder that holds your run directories "
                         "(`steerlens tour --quick` writes runs/tour-...), or create it first")
    host = "localhost" if is_loopback(address) else address
    print(f"steerlens explorer on http://{host}:{args.port} (runs: {runs.resolve()}); Ctrl+C stops it",
          file=sys.stderr)
    if not is_loopback(address):
        print(f"warning: listening on {address}: other machines can open the explorer"
              + ("; the playground may load any model path (--allow-any-model)" if args.allow_any_model else
                 "; the playground loads only zoo models and model folders inside --runs"), file=sys.stderr)
    server = subprocess.Popen(command(str(runs.resolve()), args.port, address, args.allow_any_model))
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # stopping us stops the server
    try:
        return server.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:  # Ctrl+C reaches both; anything else: stop it and wait
            server.terminate()
            server.wait(timeout=30)


def _check_listen(address: str, port: int) -> None:
    """ValueError in one line when `address` is no interface of this machine or `port` is taken."""
    import socket

    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ValueError(f"--address {address}: not an address of this machine ({error}); use 127.0.0.1 "
                         "or 0.0.0.0") from None
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a closing port is free
        try:
            probe.bind(where)
        except OSError as error:
            raise ValueError(f"cannot listen on {address}:{port} ({error.strerror or error}); pick another "
                             "--port, or an --address of this machine") from None


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
    parser.add_argument("--address", default="127.0.0.1", metavar="ADDR",
                        help="interface to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 exposes "
                             "the explorer to the network)")
    parser.add_argument("--allow-any-model", action="store_true",
                        help="when exposed (--address other than loopback), still let the playground load any "
                             "model path (default: zoo aliases and folders inside --runs only)")
    parser.set_defaults(func=run_app)
