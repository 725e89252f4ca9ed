"""`interp.routing`: the flat API (see interp/flat.py) of `steerlens routing`, every step of
the pipeline in one call."""

from __future__ import annotations

from pathlib import Path

from ..flat import analysis, finish
from .config import RoutingConfig
from .pairs import Pair, load_pairs
from .pipeline import run_routing
from .result import RoutingResult


def as_pairs(data, n: int) -> list[Pair]:
    """`data` as matched pairs: None (the shipped interp/data/refusal_pairs.jsonl), a JSONL
    file, or a list of `Pair`s / {harmful, benign, category} dicts; the first `n`."""
    if data is None or isinstance(data, (str, Path)):
        return load_pairs(data, n)
    pairs = [p if isinstance(p, Pair) else Pair(**p) for p in data]
    if n > len(pairs):
        raise ValueError(f"n={n} is more than the {len(pairs)} pairs given; pass n={len(pairs)} or fewer")
    return pairs[:n]


@analysis(RoutingConfig)
def routing(model, data=None, *, chat: bool = True, seed: int = 0, batch_size="auto", out=None,
            progress: bool = False, config: RoutingConfig) -> RoutingResult:
    """Policy-gate routing ("How Alignment Routes", arXiv 2604.04385) on the matched
    harmful/benign pairs in `data` (default: the shipped pairs): the per-head interchange
    screen, the gate, the knockout cascade, modulation, cipher collapse and rescue (the
    `steps`), all in one call. With `out`, the run is saved after every step and a call with
    the same options continues an interrupted run there. `chat=True` (as on the CLI) wraps
    each request in the chat template."""
    config.validate()
    pairs = as_pairs(data, config.n)
    result = run_routing(model, pairs, config, chat=chat, out=out, seed=seed, batch_size=batch_size,
                         progress=progress)
    return finish(result, out)
