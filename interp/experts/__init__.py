"""MoTE: behaviour-specific mixture-of-experts experts, found by association and confirmed
causally by toggling them ("Mixture of Tunable Experts", arXiv 2502.11096).

`scan.experts_scan(model, target, other, ExpertsConfig(...))` -> `result.ExpertsResult`:
routing statistics and association scores (`association`), the single-expert causal screen
and the condition evaluation measured by `behaviour`, figures (`figures`), and
`steerlens experts scan` (`cli`, which also adds `--experts-off/--experts-on` to
`steerlens generate`). `planted.planted_model()` builds the tiny Qwen3-MoE with a planted
behaviour expert that the tests, the notebook and the tour run on. The toggles themselves
are engine edits: `interp.engine.experts`.

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/experts.md.

The package is also the analysis: `interp.experts(model, (target, other), top_n=4)` calls
`interp.experts.api.experts` (see interp/callable_package.py).
"""

from ..callable_package import make_callable
from .api import experts as _experts

make_callable(__name__, _experts)
