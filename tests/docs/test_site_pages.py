"""The documentation site's structure, checked without building it (CI also runs
`mkdocs build --strict`, which fails on any broken link or page in no navigation)."""

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
GENERATED = {f"reference/{p}.md" for p in ("interp", "steering", "saes")}  # docs/_gen/hooks.py
ANALYSES = sorted(p.stem for p in (DOCS / "analyses").glob("*.md") if p.stem != "index")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _nav_paths(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_paths(value)]
    return [p for item in node for p in _nav_paths(item)]


NAV = _nav_paths(CONFIG["nav"])


def _matches(rel: str, pattern: str) -> bool:
    """A gitignore-style pattern of mkdocs' exclude_docs / not_in_nav (the forms mkdocs.yml uses)."""
    anchored, body = pattern.startswith("/"), pattern.strip("/")
    if pattern.endswith("/"):  # a folder
        folders = rel.split("/")[:-1]
        return folders[:1] == [body] if anchored else body in folders
    return fnmatch.fnmatch(rel, body) if anchored else fnmatch.fnmatch(rel.rsplit("/", 1)[-1], body)


def _excluded(rel: str) -> bool:
    patterns = [p.strip() for key in ("exclude_docs", "not_in_nav") for p in CONFIG.get(key, "").splitlines()]
    return any(_matches(rel, p) for p in patterns if p)


def test_every_page_is_in_the_navigation_and_every_entry_exists():
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    missing = sorted(p for p in pages if not _excluded(p) and p not in NAV)
    assert not missing, f"pages in no nav of mkdocs.yml: {missing}"
    for entry in NAV:
        source = ROOT / entry if entry.startswith("notebooks/") else DOCS / entry
        assert source.is_file() or entry in GENERATED, f"nav entry {entry} has no file"


def test_every_notebook_is_in_the_navigation():
    notebooks = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks and notebooks <= set(NAV), sorted(notebooks - set(NAV))


def test_the_excluded_folders_hold_what_the_build_reads():
    assert _excluded("_gen/hooks.py") and _excluded("_snippets/sites-table.md") and _excluded("fidelity/dla.md")
    assert not _excluded("engine/sites.md") and not _excluded("index.md")


@pytest.mark.parametrize("name", ANALYSES)
def test_every_analysis_page_has_the_call_the_command_a_figure_costs_and_fidelity(name):
    text = (DOCS / "analyses" / f"{name}.md").read_text(encoding="utf-8")
    for heading in ("## Run it", "## Reading the figures", "## Costs", "## Fidelity"):
        assert f"\n{heading}\n" in text, (name, heading)
    assert "```bash\nsteerlens " in text and "```python\n" in text
    images = re.findall(r"!\[[^\]]*\]\(\.\./(images/[^)]+)\)", text)
    assert images and all((DOCS / image).is_file() for image in images), (name, images)
    assert re.search(r"^<!-- fidelity [\w-]+ -->$", text, re.M), f"{name}: no fidelity marker"
    assert f"analyses/{name}.md" in NAV


def test_readme_is_short_and_its_table_links_every_analysis_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for name in ANALYSES:
        assert f"(docs/analyses/{name}.md)" in readme, f"README's table does not link {name}"
    for target in LINK.findall(readme):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to a missing {target}"
