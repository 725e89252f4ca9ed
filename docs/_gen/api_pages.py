"""The API reference pages, one per package, generated from its `__all__` at build time.

    PYTHONPATH=. python docs/_gen/api_pages.py interp     # print the page mkdocs renders

Every public name gets a section with a mkdocstrings directive (`::: path`) pointing at the
object's defining module, found by importing it: `interp`'s names load lazily (PEP 562), so
mkdocstrings' static reading of `interp/__init__.py` cannot see them, and a callable analysis
package (`interp.dla`) is documented as the function it calls. A name whose object has no
defining module of its own (a constant) is documented where its package imports it from.
tests/docs/test_api_pages.py checks that every name of every package's `__all__` gets its
section; `mkdocs build --strict` fails when a docstring does not render.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types

PACKAGES = ("interp", "steering", "saes")
"""The packages whose `__all__` is the public API, one reference page each."""

INTRO = {
    "interp": "The engine (`load`, `Model`, edits, captures, generation) and the analyses.",
    "steering": "Steering vectors, their formats, AUSteer and the refusal direction.",
    "saes": "RISE: sparse autoencoders on reasoning steps.",
}


def object_path(package: str, name: str) -> str:
    """The dotted path mkdocstrings should document for `package.name`."""
    module = importlib.import_module(package)
    obj = getattr(module, name)
    wrapped = getattr(obj, "__wrapped__", None)
    if isinstance(obj, types.ModuleType) and wrapped is not None:  # interp.dla, interp.sinks
        obj = wrapped
    if inspect.ismethod(obj):  # steering.load_vector = SteeringVector.load
        obj = obj.__func__
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    owner, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        if owner and qualname and "<" not in qualname:
            return f"{owner}.{qualname}"
    exports = getattr(module, "_EXPORTS", {})
    return f"{exports[name]}.{name}" if name in exports else f"{package}.{name}"


def render(package: str) -> str:
    """The markdown of one package's reference page."""
    module = importlib.import_module(package)
    lines = [f"# `{package}`", "", INTRO.get(package, ""), "",
             f"Every name in `{package}.__all__`, generated from the docstrings "
             "(docs/_gen/api_pages.py).", ""]
    for name in module.__all__:
        lines += [f"## `{package}.{name}`", "", f"::: {object_path(package, name)}",
                  "    options:", "      show_root_heading: false", "      show_root_toc_entry: false",
                  "      heading_level: 3", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "interp"))
