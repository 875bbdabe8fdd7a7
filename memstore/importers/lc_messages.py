"""LangChain message objects to source messages (shared by the LangChain and LangGraph readers)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .common import SourceMessage, SourceRole

_ROLES: dict[str, SourceRole] = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_CHAT_ROLES: dict[str, SourceRole] = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}


def text_of(content: Any) -> tuple[str, Counter[str]]:
    """The text of a message's content (a string, or a list of blocks) and how many blocks of each other kind."""
    if isinstance(content, str):
        return content, Counter()
    texts: list[str] = []
    other: Counter[str] = Counter()
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        else:
            other[str(block.get("type", "unknown")) if isinstance(block, dict) else type(block).__name__] += 1
    return "\n".join(texts), other


def from_langchain(message: Any) -> SourceMessage:
    """A LangChain BaseMessage as a source message; anything else is an unknown one, named by its type."""
    kind = getattr(message, "type", None)
    if not isinstance(kind, str) or not hasattr(message, "content"):
        return SourceMessage("unknown", "", type(message).__name__)
    role = _ROLES.get(kind)
    if kind == "chat":
        role = _CHAT_ROLES.get(
            str(getattr(message, "role", "")).lower(), "system" if message.role == "system" else None
        )
    text, other = text_of(message.content)
    calls = [str(c.get("name", "?")) for c in getattr(message, "tool_calls", None) or [] if isinstance(c, dict)]
    if role == "user" and not text.strip() and other:
        text = "[" + ", ".join(sorted(other)) + " not imported]"  # keep the turn: the user did say something
    return SourceMessage(
        role or "unknown",
        text,
        kind,
        note="calls " + ", ".join(calls) if calls else "",
        omitted=tuple(sorted(other.items())),
    )
