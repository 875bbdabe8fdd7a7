"""The only ways stored, model-made or file-supplied text reaches the page.

- `literal(text)`: Markdown that shows the text exactly as it is: nothing formats, links to no
  image, runs no directive (`:red[…]`, `:material/…:`), draws no math, and bidi controls are drawn
  as their codes ("[U+202E]"), so nothing reverses it. For captions, labels, errors and any
  sentence that quotes stored text.
- `plain_text(text)`: stored text for places that draw plain text (option lists, table cells), with
  the same bidi rule, so a title reads the same in the picker, the header, the tables and the exports.
- `model_markdown(text)`: a model reply's Markdown, with images (which the browser would fetch),
  math (which can draw over the page) and HTML switched off, and its size capped.

`tests/test_rendering.py` scans the UI files: every value put into a Markdown sink goes through one
of these two, so forgetting is a failing test, not a leak.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterable

import streamlit as st

from memstore.bidi import visible_bidi
from memstore.markdown import literal

__all__ = [
    "capped",
    "copyable",
    "literal",
    "model_markdown",
    "plain_text",
    "show_code",
    "show_reply",
    "show_text",
    "show_typed",
    "stream_reply",
]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
MAX_REPLY_CHARS = 20_000  # drawn at once; the rest on demand (a 3,000-row table froze the tab)
MAX_REPLY_LINES = 400
STREAM_REDRAW_S = 0.1  # a streamed reply is redrawn at most this often, whatever the size of its deltas


def plain_text(text: object) -> str:
    """Stored text for a plain-text place (an option list, a table cell): bidi controls shown as codes."""
    return visible_bidi(str(text))


def _prose(text: str) -> str:
    """Prose of a reply with `$` (math) and `![` (images) escaped; escapes already there are kept."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        if c == "$" or (c == "!" and text.startswith("[", i + 1)):
            out.append("\\" + c if c == "$" else "!\\")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _outside_code(text: str) -> str:
    """Neutralize images and math in prose; code spans are literal already and stay as they are."""
    parts = _CODE_SPAN.split(text)
    out = []
    for i in range(0, len(parts), 3):  # [prose, ticks, code, prose, ticks, code, ...]
        out.append(_prose(parts[i]))
        if i + 2 < len(parts):
            out.append(parts[i + 1] + parts[i + 2] + parts[i + 1])
    return "".join(out)


def model_markdown(text: str) -> str:
    """A model reply's Markdown: formatting kept; images and math shown as text (HTML is never rendered)."""
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if fence is None and opened:
            if prose:
                out.append(_outside_code("\n".join(prose)))
                prose = []
            fence = opened.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
        else:
            prose.append(line)
    if prose:
        out.append(_outside_code("\n".join(prose)))
    return "\n".join(out)


def show_text(text: object) -> None:
    """Stored text as plain text (never formatted), bidi controls drawn as codes so nothing reverses it."""
    st.text(plain_text(text))


def show_code(text: object, language: str | None = None) -> None:
    """Stored text in a code block (wrapped), bidi controls drawn as codes so nothing reverses it."""
    st.code(plain_text(text), language=language, wrap_lines=True)


def copyable(text: str) -> None:
    """Text to copy exactly (the code block's copy button), bidi controls and all: only where copying is the point."""
    st.code(text, language=None, wrap_lines=True)


def show_typed(text: str) -> None:
    """The user's own text, never formatted. Streamlit's text element strips the outer whitespace (invisible anyway)
    and dedents; text whose indentation would change is drawn as a code block instead, so it stays as typed."""
    if textwrap.dedent(text.strip("\n")) != text.strip("\n"):
        show_code(text)
    else:
        show_text(text)


def capped(text: str) -> tuple[str, str]:
    """The part of a reply drawn at once, and the rest (empty when it all fits)."""
    head = text[:MAX_REPLY_CHARS]
    newlines = [m.start() for m in re.finditer("\n", head)]
    if len(newlines) >= MAX_REPLY_LINES:
        head = head[: newlines[MAX_REPLY_LINES - 1]]
    return head, text[len(head) :]


def show_reply(text: str, *, key: str) -> None:
    """A model reply as Markdown, capped; the rest shown literally when asked for."""
    head, rest = capped(text)
    st.markdown(model_markdown(head) if head else " ")
    if rest:
        shown = st.session_state.get(f"whole_{key}", False)
        if not shown:
            st.button(
                f"Show the rest of this reply ({len(rest):,} more characters)",
                key=f"more_{key}",
                on_click=lambda: st.session_state.__setitem__(f"whole_{key}", True),
            )
        else:
            show_code(rest)


def stream_reply(deltas: Iterable[str]) -> str:
    """Draw a streamed reply as it arrives, at bounded cost per delta; returns the whole text.

    Redraws are throttled, and past the cap only a count of what arrived is updated, so neither a
    2 MB reply nor one sent four characters at a time slows the stream (or the browser) down.
    """
    placeholder = st.empty()
    pieces: list[str] = []
    drawn_at = 0.0
    size = 0
    for delta in deltas:
        pieces.append(delta)
        size += len(delta)
        now = time.monotonic()
        if now - drawn_at >= STREAM_REDRAW_S:
            drawn_at = now
            if size <= MAX_REPLY_CHARS:
                text = "".join(pieces)
                pieces = [text]
                placeholder.markdown(model_markdown(capped(text)[0]) + " ▌")
            else:
                placeholder.caption(f"Receiving a long reply: {size:,} characters so far…")
    text = "".join(pieces)
    head, rest = capped(text)
    with placeholder.container():
        st.markdown(model_markdown(head) if head else " ")
        if rest:
            st.caption(f"…and {len(rest):,} more characters (shown on demand once the page redraws).")
    return text


def show_error(exc: BaseException, *, what: str = "") -> None:
    """One readable sentence for any memstore error (its text may quote a server or a file: shown literally)."""
    st.error(literal(what) + literal(exc), icon=":material/error:")
