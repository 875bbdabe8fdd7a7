"""Session and thread ids as keys: one distinct key per id the source holds, whatever its type or bytes.

A source's id may be NULL, a number where text was meant, text that is not valid Unicode, or text that starts like
the hash a long id is stored as. Keys and stored sources are built so that no two ids share one.
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_KEY_CHARS = 200  # longer ids (and ids that are not plain storable text) are stored as a hash
HASHED = "sha256:"
TAGGED = "\x00"  # starts the key of an id that is not text (or is text that starts with it); never a text id's key
NULL_KEY = TAGGED + "null"


def key_of(value: Any) -> str:
    """The key of a source's id: the text itself, or a tagged form for NULL, numbers and bytes."""
    if isinstance(value, str) and not value.startswith(TAGGED):
        return value
    if value is None:
        return NULL_KEY
    if isinstance(value, bytes):
        return f"{TAGGED}blob:{value.hex()}"
    return f"{TAGGED}{type(value).__name__}:{value}"


def value_of(key: str) -> Any:
    """The id a key was made from (for a query by id); tagged keys of numbers and bytes come back as themselves."""
    if not key.startswith(TAGGED):
        return key
    if key == NULL_KEY:
        return None
    kind, _, text = key[len(TAGGED) :].partition(":")
    converters: dict[str, Any] = {"int": int, "float": float, "blob": bytes.fromhex, "str": str}
    try:
        return converters[kind](text) if kind in converters else key
    except ValueError:
        return key


def shown_key(key: str) -> str:
    """A key as people read it and the store can hold it: NULL named, unstorable characters escaped."""
    if key == NULL_KEY:
        return "(no id)"
    text = key[len(TAGGED) :] if key.startswith(TAGGED) else key
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else ascii(c)[1:-1] for c in text)


def stored_key(key: str) -> str:
    """The key as kept in a conversation's source: as given when it is short plain text, else its hash.

    A key that itself starts with "sha256:" is hashed too, so it can never pose as the hash of a longer one.
    """
    if len(key) <= MAX_KEY_CHARS and not key.startswith(HASHED) and _storable(key):
        return key
    return HASHED + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
