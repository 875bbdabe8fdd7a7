"""Text placed in Markdown exactly as it is: escaped inline, or fenced as a block.

Used by the exports (a shared file must not load images or inject headings when opened) and by
the UI's literal rendering, so there is one escaping rule.
"""

from __future__ import annotations

import re

from .bidi import visible_bidi

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them (":" too)
# also stops Streamlit's directives and the autolinking of "https://…" before its escapes are read.
PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_BACKTICKS = re.compile(r"`+")


def literal(text: object) -> str:
    """Markdown that shows `text` exactly (line breaks kept, bidi controls drawn as codes): nothing formats, no
    image, link or HTML, and nothing reorders the text around it."""
    escaped = "".join("\\" + c if c in PUNCTUATION else c for c in visible_bidi(str(text)))
    return escaped.replace("\r\n", "\n").replace("\n", "  \n")


def fenced(text: str, info: str = "text") -> str:
    """A fenced code block holding `text` verbatim: its fence is longer than any run of backticks inside."""
    longest = max((len(m.group()) for m in _BACKTICKS.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"
