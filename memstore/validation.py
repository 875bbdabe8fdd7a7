"""Checks run before any write, so bad input changes nothing."""

from __future__ import annotations

import re
import unicodedata

from .config import Limits
from .errors import InvalidInput
from .records import RECALL_SCOPES, MemorySettings

MAX_RECALL_TURNS = 20
MAX_ENTITY_NAME_CHARS = 100
MAX_ENTITY_SUMMARY_CHARS = 1_000
_KEY_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]+$")


def _no_nul(text: str, what: str) -> None:
    """NUL bytes and lone surrogates cannot be stored as UTF-8 text anywhere; refuse them up front."""
    if "\x00" in text:
        raise InvalidInput(f"{what} contains a NUL byte, which cannot be stored.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} contains characters that are not valid Unicode (lone surrogates).") from None


def is_unicode(text: str) -> bool:
    """Whether text can be stored as UTF-8 (no lone surrogate halves)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reply_text(text: object, limits: Limits) -> str:
    """A reply read from a file: text that can be stored (may be empty), within the message limit."""
    if not isinstance(text, str):
        raise InvalidInput("A reply must be text.")
    _no_nul(text, "A reply")
    if len(text) > limits.max_message_chars:
        raise InvalidInput(f"A reply is {len(text):,} characters; the limit is {limits.max_message_chars:,}.")
    return text


def message_text(text: object, limits: Limits) -> str:
    """A chat message: non-blank, no NUL bytes, within the character limit."""
    if not isinstance(text, str):
        raise InvalidInput("A message must be text.")
    _no_nul(text, "The message")
    if not text.strip():
        raise InvalidInput("The message is empty.")
    if len(text) > limits.max_message_chars:
        raise InvalidInput(f"The message is {len(text):,} characters; the limit is {limits.max_message_chars:,}.")
    return text


def entity_name(name: object) -> str:
    """An entity's name: 1 to 100 printable characters, trimmed."""
    if not isinstance(name, str) or not name.strip() or not _KEY_PATTERN.match(name.strip()):
        raise InvalidInput("An entity needs a name of printable characters.")
    if len(name.strip()) > MAX_ENTITY_NAME_CHARS:
        raise InvalidInput(f"An entity name is at most {MAX_ENTITY_NAME_CHARS} characters.")
    return name.strip()


def entity_summary(summary: object) -> str:
    """An entity's running summary: text without NUL bytes, at most 1,000 characters."""
    if not isinstance(summary, str):
        raise InvalidInput("An entity summary must be text.")
    _no_nul(summary, "The entity summary")
    return summary.strip()[:MAX_ENTITY_SUMMARY_CHARS]


INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Zl", "Zp"})  # zero-width, bidi controls, private use


def fact_key(key: object, limits: Limits) -> str:
    """A preference or session-fact key: 1 to 64 printable characters, trimmed."""
    if not isinstance(key, str):
        raise InvalidInput("A key must be text.")
    _no_nul(key, "The key")
    key = key.strip()
    if not key:
        raise InvalidInput("A key cannot be empty.")
    if len(key) > limits.max_key_chars:
        raise InvalidInput(f"The key {key[:20]!r}… is {len(key)} characters; the limit is {limits.max_key_chars}.")
    if not _KEY_PATTERN.match(key):
        raise InvalidInput(f"The key {key!r} contains control characters or line breaks.")
    hidden = next((c for c in key if unicodedata.category(c) in INVISIBLE_CATEGORIES), None)
    if hidden is not None:
        raise InvalidInput(
            f"The key contains an invisible or direction-changing character (U+{ord(hidden):04X}), "
            "which would let two different keys look the same; type it without."
        )
    return unicodedata.normalize("NFC", key)  # one spelling of what looks the same (é, not e + ◌́)


def fact_value(value: object, limits: Limits) -> str:
    """A preference value: text without NUL bytes, within its limit (may be empty)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("A value must be text.")
    _no_nul(value, "The value")
    if len(value) > limits.max_value_chars:
        raise InvalidInput(f"The value is {len(value):,} characters; the limit is {limits.max_value_chars:,}.")
    return value


def title(text: object, limits: Limits) -> str:
    """A conversation title: non-blank, one line, within its limit."""
    if not isinstance(text, str):
        raise InvalidInput("A title must be text.")
    _no_nul(text, "The title")
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("The title is empty.")
    if len(text) > limits.max_title_chars:
        raise InvalidInput(f"The title is {len(text)} characters; the limit is {limits.max_title_chars}.")
    return text


def user_id(user: object) -> str:
    """Every read and write is scoped to a non-empty user id."""
    if not isinstance(user, str) or not user.strip() or len(user) > 200 or "\x00" in user:
        raise InvalidInput("A user id must be 1 to 200 characters of text.")
    return user


def memory_settings(settings: MemorySettings, known_types: frozenset[str], limits: Limits) -> MemorySettings:
    """Memory settings: a known type, k >= 0 turns, a token limit >= 1."""
    if settings.memory_type not in known_types:
        raise InvalidInput(
            f"Unknown memory type {settings.memory_type!r}; choose one of {', '.join(sorted(known_types))}."
        )
    if isinstance(settings.window_turns, bool) or not isinstance(settings.window_turns, int):
        raise InvalidInput("The window size must be a whole number of turns.")
    if settings.window_turns < 0:
        raise InvalidInput("The window size cannot be below 0 turns.")
    if settings.window_turns > limits.max_window_turns:
        raise InvalidInput(f"The window size cannot exceed {limits.max_window_turns} turns.")
    if isinstance(settings.max_tokens, bool) or not isinstance(settings.max_tokens, int):
        raise InvalidInput("The token limit must be a whole number of tokens.")
    if settings.max_tokens < 1:
        raise InvalidInput("The token limit must be at least 1 token.")
    if settings.max_tokens > limits.max_token_limit:
        raise InvalidInput(f"The token limit cannot exceed {limits.max_token_limit:,} tokens.")
    if not isinstance(settings.system_prompt, str):
        raise InvalidInput("The system prompt must be text.")
    _no_nul(settings.system_prompt, "The system prompt")
    if len(settings.system_prompt) > limits.max_system_prompt_chars:
        raise InvalidInput(f"The system prompt is over {limits.max_system_prompt_chars:,} characters.")
    if isinstance(settings.recall_turns, bool) or not isinstance(settings.recall_turns, int):
        raise InvalidInput("The number of recalled turns must be a whole number.")
    if not 0 <= settings.recall_turns <= MAX_RECALL_TURNS:
        raise InvalidInput(f"Recall 0 to {MAX_RECALL_TURNS} turns.")
    if (
        isinstance(settings.recall_min_score, bool)
        or not isinstance(settings.recall_min_score, (int, float))
        or not -1.0 <= settings.recall_min_score <= 1.0
    ):
        raise InvalidInput("The minimum recall score is a similarity from -1.0 to 1.0.")
    if settings.recall_scope not in RECALL_SCOPES:
        raise InvalidInput(f"Recall from {' or '.join(repr(s) for s in RECALL_SCOPES)}.")
    return settings


def json_shape(value: object, *, max_depth: int, max_values: int, what: str) -> None:
    """Parsed JSON that a schema check or a page can walk safely: bounded nesting and count, and only text that can
    be stored and shown (no NUL, no lone surrogate, in keys too). Iterative, so no depth can exhaust the stack."""
    stack: list[tuple[object, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise InvalidInput(f"{what} holds more than {max_values:,} values.")
        if isinstance(item, str):
            _shown_text(item, what)
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                raise InvalidInput(f"{what} nests its data more than {max_depth} levels deep.")
            if isinstance(item, dict):
                for key in item:
                    _shown_text(key, what)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def _shown_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise InvalidInput(f"{what} holds a NUL character, which cannot be stored or shown.")
    if not is_unicode(text):
        raise InvalidInput(f"{what} holds characters that are not valid Unicode (lone surrogates).")
