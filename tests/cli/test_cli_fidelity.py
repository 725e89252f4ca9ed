"""Every analysis command's --help names its fidelity page (docs/fidelity/<page>.md), the
page exists, the index lists it, and the analysis' module docstring links it (issue 31).
`steerlens routing` is checked once its page exists (docs/fidelity/routing.md)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from interp.cli import build_parser
from interp.cli.fidelity import PAGES, fidelity_page

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = {
    ("dla",): "dla", ("lens",): "lens", ("sinks",): "sinks", ("massive",): "massive", ("emergence",): "massive",
    ("voids",): "voids", ("voids", "eval"): "voids", ("austeer",): "austeer", ("austeer", "fit"): "austeer",
    ("austeer", "eval"): "austeer", ("refusal-steer",): "refusal-direction", ("vector", "make"): "refusal-direction",
    ("experts",): "experts", ("experts", "scan"): "experts", ("rise",): "rise", ("routing",): "routing",
    **{("rise", action): "rise" for action in ("collect", "train", "analyze", "steer", "confidence")},
    ("skills",): "skills", **{("skills", action): "skills" for action in ("fit", "show", "vector", "steer", "select",
                                                                             "corpus")},
}
MODULES = {
    "interp.dla.attribution": "dla", "interp.dla.lens": "lens", "interp.sinks.measure": "sinks",
    "interp.massive.activations": "massive", "interp.massive.emergence": "massive", "interp.voids.maps": "voids",
    "interp.voids.evaluation": "voids", "steering.austeer": "austeer", "steering.austeer_eval": "austeer",
    "steering.refusal_steer": "refusal-direction", "steering.skills": "skills", "saes": "rise",
    "interp.experts": "experts",
}


def _subparser(parser: argparse.ArgumentParser, words) -> argparse.ArgumentParser:
    for word in words:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subs.choices[word]
    return parser


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_help_names_the_fidelity_page(parser, words):
    text = " ".join(_subparser(parser, words).format_help().split())  # argparse rewraps the epilog
    assert fidelity_page(COMMANDS[words]) in text


def test_every_analysis_command_is_covered(parser):
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    analyses = {"dla", "lens", "sinks", "massive", "emergence", "voids", "austeer", "refusal-steer", "experts", "rise",
                "skills", "routing"}
    assert analyses <= set(top) and {words[0] for words in COMMANDS} == analyses | {"vector"}
    for name, sub in top.items():
        if name in analyses:
            for action in sub._actions:  # every sub-command of an analysis too
                if isinstance(action, argparse._SubParsersAction):
                    assert {(name, word) for word in action.choices} <= set(COMMANDS), name


def test_pages_exist_and_the_index_lists_them():
    index = (ROOT / "docs/fidelity/index.md").read_text()
    for page in PAGES:
        if page == "routing" and not (ROOT / fidelity_page(page)).exists():
            continue  # written with the routing fidelity work
        text = (ROOT / fidelity_page(page)).read_text()
        assert f"({page}.md)" in index and "| What |" in text, page
        assert "commit" in text or "no public" in text, page  # a compared commit, or says there is no code
    with pytest.raises(ValueError, match="no fidelity page"):
        fidelity_page("nonsense")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_docstring_links_the_page(module):
    assert fidelity_page(MODULES[module]) in importlib.import_module(module).__doc__
