"""Step 3: the interchange screen (arXiv 2604.04385, step 3), through `interp.routing.screen`.

`interchange` builds the screen's config from the routing options and calls
`interp.routing.screen.screen_heads` on the pairs, with the benign greedy continuations as
the scored continuation. Step 4's gate is `HeadScreen.gate()`: the head with the highest
necessity % (the paper's gate in 11 of 12 models).
"""

from __future__ import annotations

from collections.abc import Sequence


def screen_config(config, *, heads: list[tuple[int, int]] | None = None, method: str | None = None, seed: int = 0,
                  batch_size: int | str = "auto"):
    """The `ScreenConfig` for a routing config (heads/method override it, e.g. for the cipher)."""
    from .screen import ScreenConfig

    return ScreenConfig(method=method or config.method, verify=config.verify,
                        verify_random=config.verify_random, layers=config.layer_range(None),
                        heads=heads, align=config.align, ig_steps=config.ig_steps, permutations=config.permutations,
                        bootstrap=config.bootstrap, top_k=config.top_k, seed=seed, batch_size=batch_size)


def interchange(model, harmful: Sequence[str], benign: Sequence[str], continuations, screen_cfg, *,
                chat: bool = True, progress: bool = False, checkpoint_dir=None):
    """The `HeadScreen` of the pairs (necessity / sufficiency per head and pair, p-values)."""
    from .screen import screen_heads

    return screen_heads(model, list(harmful), list(benign), [list(c) for c in continuations], screen_cfg,
                        chat=chat, progress=progress, checkpoint_dir=checkpoint_dir)
