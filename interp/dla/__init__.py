"""Direct logit attribution (`attribution`, built on `decompose` and `directions`) and the
logit lens (`lens`), with their figures, the flat API (`api`) and `steerlens dla` /
`steerlens lens` (`cli`).

The package is also the analysis: `interp.dla(model, prompts, target=" Paris")` calls
`interp.dla.api.dla` (see interp/callable_package.py); the positional form of earlier
versions stays at `interp.dla.attribution.dla(model, prompts, target, contrast)`.
"""

from ..callable_package import make_callable
from .api import dla as _dla

make_callable(__name__, _dla)
