"""Tokens as the explorer shows them: whitespace made visible, labels kept unique.

``" Paris"`` is shown as ``␣Paris``, a newline as ``⏎``, a tab as ``⇥`` and an empty token as
``∅``, so that a token that is only whitespace is not a blank cell and a leading space is
not lost. Every page that shows tokens (axis labels, cell text, hover, tables) uses these.
"""

from __future__ import annotations

_MARKERS = str.maketrans({" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"})


def visible(token) -> str:
    """The token with whitespace markers (see module doc); non-strings are shown with str()."""
    text = token if isinstance(token, str) else str(token)
    return text.translate(_MARKERS) if text else "∅"


def position_labels(tokens) -> list[str]:
    """Unique axis labels ``"<position>:<visible token>"`` (a category axis merges equal labels)."""
    return [f"{i}:{visible(t)}" for i, t in enumerate(tokens)]
