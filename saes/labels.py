"""Behaviour labels of reasoning steps: the RISE keyword lists and a judge hook.

RISE (arXiv 2512.23988) labels steps with an LLM judge; the keyword lists below are the
stand-in steerlens' methods notes give (section 6): a step is "reflection" if it contains a
reflection phrase, else "backtracking" if it contains a backtracking phrase, else "other".
Matching is case-insensitive on word boundaries. Extend with `KeywordLabeller(extra=...)`,
or pass any `judge(step_text, question) -> label` function instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

OTHER = "other"
REFLECTION = ["wait", "verify", "make sure", "hold on", "think again", "'s correct", "'s incorrect",
              "let me check", "seems right"]
BACKTRACKING = ["alternatively", "think differently", "another way", "another approach", "another method",
                "another solution", "another strategy", "another technique"]
DEFAULT_KEYWORDS: dict[str, list[str]] = {"reflection": REFLECTION, "backtracking": BACKTRACKING}

Judge = Callable[[str, str], str]


@dataclass
class KeywordLabeller:
    """Label = the first behaviour (in order) whose phrases occur in the step, else "other".

    `extra` adds phrases to existing behaviours or new behaviours (appended after them)."""

    keywords: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_KEYWORDS.items()})
    extra: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        merged = {k: list(v) for k, v in self.keywords.items()}
        for name, words in self.extra.items():
            merged.setdefault(name, []).extend(words)
        if OTHER in merged:
            raise ValueError(f"'{OTHER}' is the label of unmatched steps; name the behaviour differently")
        self.keywords = merged
        self._patterns = {name: re.compile("|".join(_phrase(w) for w in words), re.IGNORECASE)
                          for name, words in merged.items() if words}

    @property
    def behaviours(self) -> list[str]:
        return list(self.keywords)

    def __call__(self, text: str, question: str = "") -> str:
        for name, pattern in self._patterns.items():
            if pattern.search(text):
                return name
        return OTHER


def _phrase(word: str) -> str:
    escaped = re.escape(word)
    left = r"\b" if word[:1].isalnum() else ""
    right = r"\b" if word[-1:].isalnum() else ""
    return f"{left}{escaped}{right}"


def label_steps(texts: list[str], questions: list[str], judge: Judge | None = None) -> list[str]:
    """One label per step text, from `judge` (default: the RISE keyword labeller)."""
    judge = judge or KeywordLabeller()
    labels = [judge(t, q) for t, q in zip(texts, questions)]
    bad = [lab for lab in labels if not isinstance(lab, str) or not lab]
    if bad:
        raise ValueError(f"the judge must return a non-empty label string per step, got {bad[0]!r}")
    return labels
