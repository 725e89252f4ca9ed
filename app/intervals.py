"""Confidence intervals for the counts the explorer prints (k correct of n): the Wilson score
interval (`interp.metrics.intervals.wilson`) and its text form.
"""

from __future__ import annotations

from interp.metrics.intervals import wilson


def count_text(k: int, n: int) -> str:
    """"3/8 = 38% (95% CI 14-69%)": the count, the rate and its Wilson interval."""
    low, high = wilson(k, n)
    return f"{k}/{n} = {k / n:.0%} (95% CI {low:.0%}-{high:.0%})"
