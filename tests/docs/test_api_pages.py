"""The API reference (docs/_gen/api_pages.py) documents every public name of `interp`,
`steering` and `saes`, each at a path that is that very object, so a name the flat API adds
to an `__all__` appears on the site without anyone editing a page."""

import importlib
import inspect
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_gen"))
import api_pages


def _target(package: str, name: str):
    """What the reference should show for `package.name`: a callable package's function,
    a bound method's function, otherwise the object itself."""
    obj = getattr(importlib.import_module(package), name)
    if isinstance(obj, types.ModuleType) and hasattr(obj, "__wrapped__"):
        return obj.__wrapped__
    return obj.__func__ if inspect.ismethod(obj) else obj


def _resolve(path: str):
    """Import the longest module prefix of a dotted path, then walk attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj.__func__ if inspect.ismethod(obj) else obj
    raise ImportError(path)


@pytest.mark.parametrize("package", api_pages.PACKAGES)
def test_every_public_name_has_a_section_that_documents_that_object(package):
    page = api_pages.render(package)
    names = importlib.import_module(package).__all__
    assert names, f"{package}.__all__ is empty"
    for name in names:
        assert f"## `{package}.{name}`\n" in page, f"{package}.{name} missing from the API reference"
        path = api_pages.object_path(package, name)
        assert f"::: {path}\n" in page
        documented = _resolve(path)
        assert documented is _target(package, name), \
            f"{package}.{name}: the reference documents {path}, another object"


def test_a_lazily_exported_name_is_documented_at_its_defining_module():
    # `interp`'s names load on first use (PEP 562), invisible to a static reader of interp/__init__.py
    assert api_pages.object_path("interp", "Add") == "interp.engine.edits.Add"
    assert api_pages.object_path("steering", "load_vector") == "steering.vectors.SteeringVector.load"
    dla = api_pages.object_path("interp", "dla")
    assert dla.startswith("interp.dla.") and callable(_resolve(dla)) and not isinstance(_resolve(dla), types.ModuleType)
