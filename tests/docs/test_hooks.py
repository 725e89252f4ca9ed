"""docs/_gen/hooks.py: the fidelity tables embedded in the analysis pages, and the pages
generated at build time (needs mkdocs: the `docs` extra; skipped without it)."""

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_gen"))
import hooks


def _page(src_uri: str):
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_a_fidelity_table_is_embedded_below_the_page_heading_with_links_that_still_resolve(tmp_path):
    (tmp_path / "fidelity").mkdir()
    (tmp_path / "fidelity" / "dla.md").write_text(
        "# DLA: fidelity\n\n## Differences\n\n| a | b |\n|---|---|\n\n"
        "See [the index](index.md), [the CLI](../cli.md#steerlens-dla), [TL](https://example.org/x) and [here](#differences).\n")
    out = hooks.on_page_markdown("# DLA\n\n## Fidelity\n\n<!-- fidelity dla -->\n", _page("analyses/dla.md"),
                                 {"docs_dir": str(tmp_path)}, None)
    assert "### DLA: fidelity" in out and "#### Differences" in out and "| a | b |" in out
    assert "](../fidelity/index.md)" in out          # a sibling link of the fidelity page
    assert "](../cli.md#steerlens-dla)" in out and "](https://example.org/x)" in out and "](#differences)" in out
    assert "<!-- fidelity" not in out


def test_a_missing_fidelity_page_is_a_warning_once_the_fidelity_folder_exists(tmp_path, caplog):
    (tmp_path / "fidelity").mkdir()
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.steerlens"):
        hooks.on_page_markdown("<!-- fidelity voids -->\n", _page("analyses/voids.md"), {"docs_dir": str(tmp_path)}, None)
    assert any("docs/fidelity/voids.md is missing" in r.getMessage() for r in caplog.records)  # strict: fails the build


def test_the_cli_page_is_rendered_from_the_parser():
    from interp.cli.reference import render

    assert hooks.on_page_markdown("stale text", _page("cli.md"), {"docs_dir": "docs"}, None) == render()
