"""Policy-gate routing: per-head interchange screens of refusal circuits, knockout cascade,
modulation, cipher collapse and rescue ("How Alignment Routes", arXiv 2604.04385).

The fast screen (batched exact interchange and attribution patching) is `interp.routing.screen`.
The pipeline (arXiv 2604.04385), one concept per module: `pairs` (the matched pairs file),
`cipher`, `baseline` (greedy continuations, probe direction), `nll`, `dla_screen` (step 1),
`ablation` (2), `interchange` (3, 4's gate), `knockout` (4-5), `modulation` (6), `collapse` (7),
`rescue` (8), `contrast` (9), `pipeline.run_routing` (all of them, saved and resumable),
`result`, `summary`, `figures`, `config`, the flat API (`api`) and `cli` (`steerlens routing`).

The package is also the analysis: `interp.routing(model, n=24, steps=[...])` calls
`interp.routing.api.routing` (see interp/callable_package.py).

Every difference from the authors' code (gregfrank/how-alignment-routes), why, which is our
default, and the options that reproduce theirs: docs/fidelity/routing.md. The fast screen's
methods (AtP, integrated gradients) and how the default was chosen: docs/routing.md.
"""

from ..callable_package import make_callable
from .api import routing as _routing

make_callable(__name__, _routing)
