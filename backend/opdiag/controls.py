"""Characters that change how a terminal or a page shows text rather than what it says.

Span names, attribute values, file names and Jaeger's error texts are untrusted; printed
raw they can move the cursor, clear the screen, retitle the window (C0 and C1 controls:
ESC, CSI, OSC, BEL) or reorder what a reader sees (bidirectional overrides and isolates, as
in "Trojan Source"). Every renderer that writes such text replaces these with a space; a
solution command holding one is not offered at all (``diagnosis.templates``).
"""

from __future__ import annotations

import re
from functools import cache

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# marks, embeddings, overrides and isolates.
_FORMAT = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
UNSAFE = f"[\x00-\x1f\x7f-\x9f{_FORMAT}]"
# the same, but keeping tab and newline (a code block keeps its lines)
UNSAFE_IN_BLOCK = f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMAT}]"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # (on first use: the CLI's start-up does not pay for it)


def one_line(text: str) -> str:
    """``text`` with every unsafe character (newlines included) replaced by a space."""
    return text if text.isprintable() else _compiled(UNSAFE).sub(" ", text)


def has_unsafe(text: str) -> bool:
    return not text.isprintable() and _compiled(UNSAFE).search(text) is not None


def message_line(text: str) -> str:
    """A message for the terminal: one line, runs of blanks as one space, nothing unsafe."""
    return " ".join(one_line(text).split())
