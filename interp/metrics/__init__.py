"""Behaviour measures shared by analyses and steering: the keyword refusal classifier
(`refusal`), perplexity (`perplexity`) and intervals of counts (`intervals`)."""


def __getattr__(name: str):
    """`interp.metrics.perplexity` and friends import on first access."""
    import sys

    from ..callable_package import submodule

    return submodule(sys.modules[__name__], name)
