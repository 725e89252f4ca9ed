"""Who may reach the explorer, and which models its playground may load.

`steerlens app` listens on 127.0.0.1 unless ``--address`` says otherwise, and passes its
choices to the app after streamlit's ``--`` (``--runs DIR --address A [--allow-any-model]``).
The playground loads and runs a model from the path typed into it, so when the app is
exposed beyond this machine (any address but a loopback one) that path is limited to zoo
aliases and folders (or .gguf files) inside the runs root, unless ``--allow-any-model``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class AppOptions:
    runs: Path  # resolved runs root
    address: str = DEFAULT_ADDRESS
    allow_any_model: bool = False

    @property
    def exposed(self) -> bool:
        return not is_loopback(self.address)


def is_loopback(address: str) -> bool:
    """True for localhost / 127.x / ::1; False for 0.0.0.0, a LAN address or a host name."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def app_options(argv: list[str] | None = None) -> AppOptions:
    """The options after streamlit's ``--``; the runs root falls back to $STEERLENS_RUNS, then ./runs."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runs", default=None)
    parser.add_argument("--address", default=None)
    parser.add_argument("--allow-any-model", action="store_true")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    runs = Path(args.runs or os.environ.get("STEERLENS_RUNS") or "runs").expanduser().resolve()
    address = args.address or os.environ.get("STEERLENS_ADDRESS") or _streamlit_address() or DEFAULT_ADDRESS
    return AppOptions(runs, address, args.allow_any_model)


def _streamlit_address() -> str | None:
    """Streamlit's server.address when set (`streamlit run app/main.py --server.address ...`)."""
    try:
        import streamlit as st

        return st.get_option("server.address") or None
    except Exception:
        return None


def model_refusal(spec: str, options: AppOptions) -> str | None:
    """Why the playground must not load `spec` under `options` (None: it may)."""
    if not options.exposed or options.allow_any_model:
        return None
    from interp.models.zoo import ZOO

    if spec in ZOO:
        return None
    try:
        path = Path(spec).expanduser().resolve()
        root = options.runs.resolve()
        if path != root and root in path.parents and path.exists():
            return None
    except (OSError, RuntimeError, ValueError):
        pass
    return (f"This explorer is served on {options.address} (reachable from other machines), so the playground "
            f"loads only zoo aliases ({', '.join(sorted(ZOO)[:4])}, ...) and model folders inside the runs folder "
            f"{options.runs}. Restart it with --allow-any-model to load {spec!r}.")
