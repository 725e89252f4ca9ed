"""The tracing engine: models, tokenisation and batching, sites, hooks, edits, generation,
the steerlens_eager attention, the activation cache and store, layer skipping.

The engine knows nothing about any analysis: it imports only `interp.engine`, `interp.arch`
and third-party packages (tests/test_layout.py checks this).
"""


def __getattr__(name: str):
    """A submodule imports on first access (`interp.engine.experts.expert_toggles`)."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
