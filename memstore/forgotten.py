"""What a forgotten text becomes wherever a copy of it is kept: in the store and outside it (the outbox)."""

from __future__ import annotations

FORGOTTEN_MARK = "[forgotten]"
SUBSTRING_MIN_CHARS = 12  # shorter texts are replaced only where they are a whole message, never inside words
JOURNAL_PENDING_NOTE = (
    "An old copy is still in the database's journal (its -wal file) because another connection is reading the "
    "database; it is erased as soon as that reader finishes (on the next save, or when the app stops)."
)


def redacted(content: str, text: str) -> str:
    """`content` with `text` replaced by the mark: whole, or quoted inside it when the text is long enough."""
    if not text:
        return content
    if content == text:
        return FORGOTTEN_MARK
    if len(text) >= SUBSTRING_MIN_CHARS:
        return content.replace(text, FORGOTTEN_MARK)
    return content
