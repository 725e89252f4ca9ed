"""Where each analysis states how it differs from its authors' code: docs/fidelity/<page>.md.

`fidelity_epilog(page)` is the line every analysis command's `--help` ends with; the
pages themselves (one per analysis, and `index.md` with the agreement table) list every
difference, which one is our default and the option that reproduces the paper.
"""

from __future__ import annotations

PAGES = ("austeer", "dla", "experts", "lens", "massive", "refusal-direction", "rise", "routing", "sinks", "skills",
         "voids")


def fidelity_page(page: str) -> str:
    """The page's path in the repository, e.g. docs/fidelity/voids.md (ValueError if unknown)."""
    if page not in PAGES:
        raise ValueError(f"no fidelity page '{page}': use one of {', '.join(PAGES)}")
    return f"docs/fidelity/{page}.md"


def fidelity_epilog(page: str) -> str:
    """One sentence for a command's --help epilog naming its fidelity page."""
    return (f"Differences from the authors' code, and the options that reproduce it: {fidelity_page(page)} "
            "(all analyses: docs/fidelity/index.md).")
