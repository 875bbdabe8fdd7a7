"""A conversation's automatic title: made from its first message, and made again when that message is forgotten."""

from __future__ import annotations

DEFAULT_TITLE = "New chat"
TITLE_FROM_MESSAGE_CHARS = 48
FORK_SUFFIX = " (fork at turn "  # a fork's title: the source's, then this, the turn and the memory type


def title_from_message(text: str) -> str:
    """A short title from a first message: one line, cut at a word boundary."""
    line = " ".join(text.split())
    if len(line) <= TITLE_FROM_MESSAGE_CHARS:
        return line
    cut = line[:TITLE_FROM_MESSAGE_CHARS]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
