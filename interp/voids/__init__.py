"""LAC voids ("Void in Language Models"): the rule (`rule`), void maps per token and phase
(`maps`), multiple-choice evaluation with layer skipping (`evaluation`, `mcq`), the flat API
(`api`).

The package is also the analysis: `interp.voids(model, prompts, alpha=0.8)` calls
`interp.voids.api.voids` (see interp/callable_package.py); `interp.voids_eval` is the
accuracy sweep.
"""

from ..callable_package import make_callable
from .api import voids as _voids

make_callable(__name__, _voids)
