"""Behaviour measures shared by analyses and steering: the keyword refusal classifier
(`refusal`) and perplexity (`perplexity`)."""


def __getattr__(name: str):
    """`interp.metrics.perplexity` and friends import on first access."""
    import sys

    from ..callable_package import submodule

    return submodule(sys.modules[__name__], name)
