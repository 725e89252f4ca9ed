"""Routing tests run against the real `interp.routing.screen` when it is present; until the
screen lands on this branch, a stand-in of the contract's shapes (ROUTING_INTERFACE.md)
is installed so the pipeline's own steps can be tested. The stand-in computes the
baseline NLLs for real and fills the per-head scores from a seeded generator."""

import importlib
import sys
import types
from dataclasses import dataclass, field

import pytest
import torch


def _install_stand_in():
    from interp.routing.nll import continuation_nll

    @dataclass
    class ScreenConfig:
        method: str = "atp+exact"
        verify: int = 24
        verify_random: int = 24
        layers: tuple | None = None
        heads: list | None = None
        align: str = "right"
        permutations: int = 10_000
        bootstrap: int = 2_000
        top_k: int = 20
        seed: int = 0
        batch_size: object = "auto"

    @dataclass
    class HeadScreen:
        heads: list
        necessity: torch.Tensor
        sufficiency: torch.Tensor
        atp_necessity: torch.Tensor | None
        atp_sufficiency: torch.Tensor | None
        nll_harmful: torch.Tensor
        nll_benign: torch.Tensor
        baseline_delta: torch.Tensor
        necessity_pct: torch.Tensor
        sufficiency_pct: torch.Tensor
        p_necessity: torch.Tensor
        p_sufficiency: torch.Tensor
        exact: torch.Tensor
        method: str
        align: str
        rank_correlation: float | None = None
        missed_top_k: int | None = None
        topk_jaccard: float | None = None
        timings: dict = field(default_factory=dict)

        def gate(self):
            return tuple(self.heads[int(torch.nan_to_num(self.necessity_pct, nan=-1e9).argmax())])

    def screen_heads(model, harmful, benign, continuations, config, *, chat=True, progress=True, checkpoint_dir=None):
        start, stop = config.layers or (0, model.n_layers)
        heads = config.heads or [(l, h) for l in range(start, stop) for h in range(model.n_heads)]
        nll_h = continuation_nll(model, harmful, continuations, chat=chat)
        nll_b = continuation_nll(model, benign, continuations, chat=chat)
        g = torch.Generator().manual_seed(config.seed)
        nec = torch.randn(len(heads), len(harmful), generator=g, dtype=torch.float64) * 0.1
        suf = torch.randn(len(heads), len(harmful), generator=g, dtype=torch.float64) * 0.1
        delta = nll_h - nll_b
        pct = lambda x: 100 * x.mean(-1) / delta.mean()
        p = torch.rand(len(heads), generator=g, dtype=torch.float64)
        atp = None if config.method == "exact" else nec + 0.01
        return HeadScreen(heads, nec, suf, atp, None if atp is None else suf + 0.01, nll_h, nll_b, delta,
                          pct(nec), pct(suf), p, p.clone(), torch.ones(len(heads), dtype=torch.bool),
                          config.method, config.align, timings={"stand_in": 0.0})

    module = types.ModuleType("interp.routing.screen")
    module.ScreenConfig, module.HeadScreen, module.screen_heads = ScreenConfig, HeadScreen, screen_heads
    sys.modules["interp.routing.screen"] = module
    import interp.routing

    interp.routing.screen = module


try:
    importlib.import_module("interp.routing.screen")
except ModuleNotFoundError:
    _install_stand_in()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
