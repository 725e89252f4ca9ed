"""mkdocs hooks: pages generated from the code at build time, and the notebooks.

- `notebooks/*.ipynb` (outside docs/) join the site as `notebooks/NAME.ipynb`, rendered with
  their stored outputs by mkdocs-jupyter;
- `reference/interp.md`, `reference/steering.md`, `reference/saes.md` are generated from
  each package's `__all__` (docs/_gen/api_pages.py);
- `cli.md` is rendered from the command-line parser (`interp.cli.reference.render`), so
  the site cannot show a stale reference even if the checked-in docs/cli.md were one;
- a line `<!-- fidelity NAME -->` in a page is replaced by the fidelity table of that
  analysis, `docs/fidelity/NAME.md`, with its headings moved under the page's own.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]


def _checkout() -> None:
    """Import this checkout's packages (not another editable install of steerlens) and the
    generators beside this file. mkdocs restores `sys.path` after loading a hook, so this
    runs in each event, before anything is imported."""
    for path in (str(Path(__file__).parent), str(ROOT)):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


log = logging.getLogger("mkdocs.plugins.steerlens")
FIDELITY = re.compile(r"^<!-- fidelity ([\w-]+) -->$", re.M)
LINK = re.compile(r"\]\((?!https?:|#|/|\.\./)([^)]+)\)")


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files, config):
    _checkout()
    import api_pages

    for package in api_pages.PACKAGES:  # a package imported earlier from elsewhere would be documented wrongly
        where = Path(importlib.import_module(package).__file__).resolve()
        if ROOT not in where.parents:
            log.warning("the API reference would document %s from %s, not from this checkout %s", package, where, ROOT)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(File(f"notebooks/{notebook.name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    for package in api_pages.PACKAGES:
        files.append(File.generated(config, f"reference/{package}.md", content=api_pages.render(package)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "cli.md":
        _checkout()
        from interp.cli.reference import render

        return render()
    return FIDELITY.sub(lambda m: fidelity(m.group(1), Path(config["docs_dir"])), markdown)


def fidelity(name: str, docs: Path) -> str:
    """The fidelity page of analysis `name`, headings demoted below the page's `## Fidelity`,
    relative links rewritten to resolve from the analysis page (a sibling folder)."""
    path = docs / "fidelity" / f"{name}.md"
    if not path.is_file():
        if (docs / "fidelity").is_dir():
            log.warning("docs/fidelity/%s.md is missing: every analysis page shows its fidelity table", name)
        else:
            log.info("no docs/fidelity/ in this checkout: fidelity of %s not embedded", name)
        return f"The fidelity table of this analysis is `docs/fidelity/{name}.md`, absent from this checkout."
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M)
    return LINK.sub(lambda m: f"](../fidelity/{m.group(1)})", text)
