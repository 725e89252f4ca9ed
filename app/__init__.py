"""steerlens explorer: a Streamlit app over run directories and a live steering playground.

    steerlens app --runs DIR [--port N]

main.py (entry point) -> browse.py (run list, run page) -> registry.py (one page per
analysis, `app/pages_<name>.py`) + generic.py (what every run gets); runs.py is the only
place that touches the runs folder (safe listing, read-only access); playground.py and
vectors.py are the steering playground; cli_app.py adds the `app` subcommand.
"""
