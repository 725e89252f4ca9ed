"""Attention sinks (`measure`, with its statistics in `stats` and `result`), sink-attention
edits (`attention_edits`), figures and `steerlens sinks` (`cli`).

The package is also the analysis: `interp.sinks(model, prompts)` calls
`interp.sinks.measure.sinks` (see interp/callable_package.py).
"""

from ..callable_package import make_callable
from .measure import sinks as _sinks

make_callable(__name__, _sinks)
