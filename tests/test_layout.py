"""The package layout: one folder per concept, no import cycles, an engine that knows no analysis.

Import graph rules (read from the source with `ast`, nothing is imported):
- every `import` / `from ... import` counts, at module level or inside a function or method
  (an import moved into a function to dodge a cycle is still a cycle);
- imports under `if TYPE_CHECKING:` do not count (they never run);
- `from pkg import name` points at the module `pkg.name` when that is a module, else at `pkg`;
  relative imports are resolved against the importing module's package;
- `interp/__init__.py` imports its public names on first access from the table `_EXPORTS` /
  `_PACKAGES`; those entries count as imports of `interp`. Other dynamic imports (the CLI's
  command discovery, the explorer's page registry) are deliberately not counted.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import tomllib
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("interp", "steering", "saes", "app")
MAX_LINES = 400
ENGINE_MAY_IMPORT = ("interp.engine", "interp.arch")
PUBLIC_API = [
    "ActivationCache", "Add", "ArchSpec", "Edit", "ExpertSelection", "Fn", "Generation", "HookPoint",
    "HookSet", "Model", "Patch", "ProjectOut", "Scale", "Set", "SiteInfo", "StartAt", "TokenBatch",
    "UnsupportedArchitectureError", "Zero", "dla", "emergence", "experts", "generate", "list_runs", "load", "load_run",
    "logit_lens", "massive_activations", "routing", "sinks", "supported_families", "voids", "voids_eval",
]


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package) for every module of PACKAGES."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(name: str, *, type_checking: bool = False) -> set[str]:
    """Absolute names of everything module `name` imports (third-party included)."""
    path, is_package = MODULES[name]
    package = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child) and not type_checking:
                for stmt in child.orelse:
                    visit_statement(stmt)
                continue
            visit_statement(child)

    def visit_statement(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
        if _is_type_checking(node) and not type_checking:
            for stmt in node.orelse:
                visit_statement(stmt)
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    if name == "interp":
        found.update(_lazy_table())
    return found


def _lazy_table() -> set[str]:
    """Modules named in interp/__init__.py's lazy import tables."""
    tree = ast.parse((ROOT / "interp" / "__init__.py").read_text(encoding="utf-8"))
    modules = set()
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id in ("_EXPORTS", "_PACKAGES"):
            modules.update(ast.literal_eval(node.value).values())
    assert modules, "interp/__init__.py has no _EXPORTS / _PACKAGES table"
    return modules


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imports(name) if m in MODULES and m != name} for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = []
    for component in components:
        if len(component) < 2:
            continue
        start = min(component)
        parent = {start: None}
        queue = deque([start])
        while queue:
            v = queue.popleft()
            if start in graph[v]:  # start -> ... -> v -> start
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                cycles.append(list(reversed(path)) + [start])
                break
            for w in sorted(graph[v] & component):
                if w not in parent:
                    parent[w] = v
                    queue.append(w)
    return cycles


def test_the_cycle_finder_finds_a_function_level_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_module_that_imports_it_back():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (function-level imports count):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)


def test_no_package_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): n for path, _ in MODULES.values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_engine_imports_only_the_engine_arch_and_third_party():
    ours = PACKAGES
    bad = {}
    for name in MODULES:
        if name == "interp.engine" or name.startswith("interp.engine."):
            wrong = sorted(m for m in _imports(name, type_checking=True)
                           if m.split(".")[0] in ours
                           and not any(m == allowed or m.startswith(allowed + ".") for allowed in ENGINE_MAY_IMPORT))
            if wrong:
                bad[name] = wrong
    assert not bad, f"the engine imports analysis / other packages: {bad}"


def test_every_package_folder_has_an_init_and_is_packaged():
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packaged = set(find_packages(where=str(ROOT), include=include))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for package in PACKAGES
               for p in (ROOT / package).rglob("*.py")}
    missing_init = sorted(f for f in folders if not (ROOT / f.replace(".", "/") / "__init__.py").is_file())
    assert not missing_init, f"folders with modules but no __init__.py: {missing_init}"
    assert folders <= packaged, f"not found by [tool.setuptools.packages.find]: {sorted(folders - packaged)}"
    for pattern in config["tool"]["setuptools"]["package-data"]["interp"]:  # the shipped prompt and text files
        assert list((ROOT / "interp").glob(pattern)), f"package-data interp: {pattern} matches nothing"


def _fresh_python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_interp_and_the_cli_package_load_neither_torch_nor_transformers():
    out = _fresh_python(
        "import sys, interp, interp.cli\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
        "interp.Add\n"
        "print('torch' in sys.modules)\n")
    assert out.split("\n")[:2] == ["[]", "True"]


def test_public_names_resolve_lazily_to_their_defining_modules():
    import interp
    import interp.engine.edits
    import interp.engine.model

    assert interp.__all__ == PUBLIC_API
    assert set(interp.__all__) <= set(dir(interp))
    for name in interp.__all__:
        assert getattr(interp, name) is not None
    from interp import Add, Model  # noqa: F401

    assert interp.Add is interp.engine.edits.Add and interp.Model is interp.engine.model.Model
    with pytest.raises(AttributeError):
        interp.no_such_name  # noqa: B018


def test_steerlens_eager_is_registered_by_the_engine_not_by_import_interp():
    out = _fresh_python(
        "from transformers import AttentionInterface\n"
        "import interp\n"
        "print('steerlens_eager' in AttentionInterface())\n"
        "import interp.engine.model\n"
        "print('steerlens_eager' in AttentionInterface())\n")
    assert out.split() == ["False", "True"]


def test_analysis_packages_stay_callable_after_their_packages_are_imported():
    import interp
    import interp.dla.attribution
    import interp.dla.cli
    import interp.experts.scan
    import interp.routing.pipeline
    import interp.sinks.measure
    import interp.voids.maps
    from tiny import tiny_model

    for name in ("dla", "sinks", "voids", "routing", "experts"):
        package = getattr(interp, name)
        assert callable(package) and package.__wrapped__ is getattr(interp, name).api.__dict__[name]
        assert inspect.signature(package) == inspect.signature(package.__wrapped__)
    from interp import dla, sinks

    assert dla is interp.dla and sinks is interp.sinks
    model = tiny_model("llama")
    result = interp.dla(model, ["hello there"], target="e", contrast="t")
    assert type(result).__name__ == "DLAResult"
    assert type(interp.sinks(model, ["hello there, again"], tokens=8, random_tokens=False)).__name__ == "SinkResult"


def test_the_cli_discovers_every_analysis_package_command_module():
    from interp.cli import _command_modules

    found = set(_command_modules())
    expected = {f"interp.{p.parent.name}.cli" for p in (ROOT / "interp").glob("*/cli.py")}
    expected |= {"interp.cli.core", "interp.cli.tour", "steering.cli_steering", "steering.cli_vectors", "app.cli_app"}
    assert expected <= found, sorted(expected - found)
