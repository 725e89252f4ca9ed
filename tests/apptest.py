"""Opening the explorer in Streamlit's AppTest, shared by every app page test."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"


def open_app(monkeypatch, root: Path, run: str | None = None, **env) -> AppTest:
    """The explorer over the runs folder `root` (extra environment from `env`), on `run`'s page."""
    monkeypatch.setenv("STEERLENS_RUNS", str(root))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    if run is not None:
        at.query_params["run"] = run
    return at.run()


def problems(at: AppTest) -> list[str]:
    """Exceptions and st.error messages the page showed."""
    return [e.value for e in at.exception] + [e.value for e in at.error]
