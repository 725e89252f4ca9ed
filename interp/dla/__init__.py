"""Direct logit attribution (`attribution`, built on `decompose` and `directions`) and the
logit lens (`lens`), with their figures and `steerlens dla` / `steerlens lens` (`cli`).

The package is also the analysis: `interp.dla(model, prompts, target, contrast)` calls
`interp.dla.attribution.dla` (see interp/callable_package.py).
"""

from ..callable_package import make_callable
from .attribution import dla as _dla

make_callable(__name__, _dla)
