"""Errors memstore raises; the UI turns each into one friendly sentence."""

from __future__ import annotations


class MemoryLabError(Exception):
    """Base of every error memstore raises on purpose, so the UI can catch one type."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(MemoryLabError):
    """Input was refused before anything changed."""


class NotFound(MemoryLabError):
    """The thing does not exist, or belongs to another user (the two look the same on purpose)."""


class StorageError(MemoryLabError):
    """The database cannot be opened or used (corrupt, read-only, newer schema)."""


class ConfigError(MemoryLabError):
    """The settings do not describe a usable model or database."""


class LLMError(MemoryLabError):
    """A model call failed; `kind` is a stable code, `message` a sentence for people."""

    def __init__(self, kind: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


REDACTED = "[API key removed]"


def redact(text: str, *secrets: str | None) -> str:
    """Text with every configured secret taken out (servers may echo the key in an error)."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def one_line(text: str, max_chars: int = 200) -> str:
    """A server's text fit for one line of a sentence: control characters out, cut to `max_chars`."""
    clean = "".join(c for c in text if c.isprintable())
    return clean if len(clean) <= max_chars else clean[: max_chars - 1] + "…"
