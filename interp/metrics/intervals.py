"""Confidence intervals of counts (k successes of n).

`wilson(k, n)` is the Wilson score interval (E. B. Wilson, "Probable inference, the law of
succession, and statistical inference", JASA 22, 1927): unlike the normal approximation
p +/- z sqrt(p(1-p)/n) it stays inside [0, 1] and is not zero-width at 0/n or n/n, which
matters at the 8 to 16 questions of a quick run. Used by the explorer (`app.intervals`) and
by the RISE confidence dose-response (`saes.confidence_effect`).
"""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for k successes in n trials (95% for the
    default z). ValueError unless 0 <= k <= n and n >= 1."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"wilson needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
