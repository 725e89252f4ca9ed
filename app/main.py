"""steerlens explorer: browse saved runs of every analysis and steer a model live.

Start it with ``steerlens app --runs DIR`` (or ``streamlit run app/main.py -- --runs DIR``;
the environment variable STEERLENS_RUNS is read when no ``--runs`` is given). The runs
folder is fixed at start; pages and query parameters only choose among the runs listed
in it (see `app.runs`).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `streamlit run app/main.py` puts app/ first on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from app import access, browse, registry

VIEWS = {"runs": "Runs", "playground": "Steering playground"}


def runs_root(argv: list[str] | None = None) -> Path:
    """The runs folder: ``--runs DIR`` after streamlit's ``--``, else $STEERLENS_RUNS, else ./runs."""
    return access.app_options(argv).runs


def main() -> None:
    st.set_page_config(page_title="steerlens explorer", layout="wide")
    root = runs_root()
    if "view" not in st.session_state:
        st.session_state["view"] = "playground" if st.query_params.get("view") == "playground" else "runs"
    view = st.sidebar.radio("View", list(VIEWS), key="view", format_func=VIEWS.get)
    if view == "playground":
        st.query_params.pop("run", None)
        st.query_params["view"] = "playground"
        from app import playground

        registry.discover()  # page modules may add playground controls (MoE expert toggles)
        playground.page(root, browse.runs_in(root))
        return
    st.query_params.pop("view", None)
    st.query_params.pop("vector", None)  # the playground's vector choice (app.links)
    entries = browse.runs_in(root, warm=True)
    entry = browse.choose_run(entries)
    if st.sidebar.button("Rescan runs folder", key="rescan"):
        browse._scan.clear()
        st.rerun()
    registry.discover()
    for module, error in registry.BROKEN_PAGES.items():
        st.sidebar.warning(f"page {module} failed to load ({error}); its runs use the generic view")
    if entry is None:
        browse.run_list(root, entries)
    else:
        browse.run_page(entry)


main()
