"""Analysis packages that are also their analysis' function.

`interp.dla(model, ...)` and `interp.sinks(model, ...)` are public functions, and interp/dla/
and interp/sinks/ are packages. Python binds an imported subpackage as an attribute of its
parent, so after `import interp.dla.attribution` the name `interp.dla` is the package
whatever it was before. Rather than fight that, the package itself is made callable: calling
it calls the function, `inspect.signature` sees the function's signature (`__wrapped__`),
and `interp.dla.attribution` and friends stay ordinary submodules.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable


class CallablePackage(types.ModuleType):
    """A package whose call runs its `__wrapped__` function."""

    __wrapped__: Callable

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, name: str):
        """A submodule not imported yet is imported on first access (`interp.sinks.attention_edits`)."""
        return submodule(self, name)

    def __repr__(self) -> str:
        function = self.__wrapped__
        return (f"<analysis package {self.__name__}: call it to run "
                f"{function.__module__}.{function.__qualname__}(...)>")


def make_callable(name: str, function: Callable) -> None:
    """Make the module `name` (a package's `__name__`) call `function` when called."""
    module = sys.modules[name]
    module.__class__ = CallablePackage
    module.__wrapped__ = function


def submodule(package: types.ModuleType, name: str) -> types.ModuleType:
    """`package.name` when it is a submodule (imported now), else AttributeError."""
    import importlib.util

    full = f"{package.__name__}.{name}"
    if name.startswith("_") or not hasattr(package, "__path__") or importlib.util.find_spec(full) is None:
        raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
    return importlib.import_module(full)
