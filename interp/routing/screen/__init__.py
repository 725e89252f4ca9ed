"""The policy-gate head screen: interchange necessity and sufficiency of every head, fast and exact.

    from interp.routing.screen import ScreenConfig, HeadScreen, screen_heads
    screen = screen_heads(model, harmful, benign, continuations, ScreenConfig(method="atp+exact"))
    screen.gate(), screen.necessity_pct, screen.p_necessity

Modules, one concept each: `pairs` (prompt + continuation tokens), `align` (donor/base
positions), `metric` (continuation NLL), `naive` (one forward per patch, the reference),
`batched` (batched exact interchange), `atp` (attribution patching), `ig` (integrated
gradients), `verify` (which heads the exact stage re-measures), `stats` (sign-flip p-values,
Westfall-Young family-wise p, bootstrap Jaccard, Spearman), `checkpoint`, `config`, `result`,
`screen`. Choosing a method: docs/routing.md; differences from the authors' code:
docs/fidelity/routing.md.
"""

from .config import ScreenConfig
from .result import HeadScreen
from .screen import screen_heads

__all__ = ["HeadScreen", "ScreenConfig", "screen_heads"]
