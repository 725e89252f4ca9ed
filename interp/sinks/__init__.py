"""Attention sinks (`measure`, with its statistics in `stats` and `result`), sink-attention
edits (`attention_edits`), figures, the flat API (`api`) and `steerlens sinks` (`cli`).

The package is also the analysis: `interp.sinks(model, prompts, tokens=64)` calls
`interp.sinks.api.sinks` (see interp/callable_package.py).
"""

from ..callable_package import make_callable
from .api import sinks as _sinks

make_callable(__name__, _sinks)
