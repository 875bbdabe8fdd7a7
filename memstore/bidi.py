"""Bidirectional formatting characters made visible, so stored text cannot reorder what is drawn around it.

U+202A–U+202E (embeddings, overrides) and U+2066–U+2069 (isolates) are invisible and reverse or move the
text after them: a title "‮gpj.exe" reads "exe.jpg". Wherever stored text is shown (the page, the exports)
each one is drawn as its code, e.g. "[U+202E]"; the stored text itself is never changed.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def visible_bidi(text: str) -> str:
    """The text with each bidi embedding, override or isolate shown as its code point ("[U+202E]")."""
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)
