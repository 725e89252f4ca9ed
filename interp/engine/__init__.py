"""The tracing engine: models, tokenisation and batching, sites, hooks, edits, generation,
the steerlens_eager attention, the activation cache and store, layer skipping.

The engine knows nothing about any analysis: it imports only `interp.engine`, `interp.arch`
and third-party packages (tests/test_layout.py checks this).
"""
