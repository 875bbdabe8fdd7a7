"""A conversation's turns as memory sees them: a message of the user's and the reply that counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import ChatMessage, Message
from ..tokens import TOKENS_PER_MESSAGE, TokenCounter


@dataclass(frozen=True)
class TurnView:
    """One past turn: the user's message and the reply that counts (latest complete or partial)."""

    number: int
    user: Message | None
    reply: Message | None
    failed_attempts: int
    tokens: int

    def chat_messages(self) -> list[ChatMessage]:
        out = []
        if self.user is not None:
            out.append(ChatMessage("user", self.user.content))
        if self.reply is not None:
            out.append(ChatMessage("assistant", self.reply.content))
        return out


def group_turns(messages: Sequence[Message], counter: TokenCounter) -> list[TurnView]:
    """Group messages (ordered by seq) into turns; failed attempts are counted, never sent."""
    by_turn: dict[int, list[Message]] = {}
    for message in messages:
        by_turn.setdefault(message.turn, []).append(message)
    turns = []
    for number in sorted(by_turn):
        rows = by_turn[number]
        user = next((m for m in rows if m.role == "user" and m.status != "forgotten"), None)
        replies = [m for m in rows if m.role == "assistant" and m.status in ("complete", "partial")]
        reply = replies[-1] if replies else None
        failed = sum(1 for m in rows if m.role == "assistant" and m.status == "failed")
        tokens = sum(stored_message_tokens(m, counter) for m in (user, reply) if m is not None)
        turns.append(TurnView(number, user, reply, failed, tokens))
    return turns


def stored_message_tokens(message: Message, counter: TokenCounter) -> int:
    """What a stored message costs in a request: its stored count when made with this tokenizer, else a fresh one."""
    content_tokens = message.tokens if message.tokenizer == counter.name else counter.count(message.content)
    return TOKENS_PER_MESSAGE + content_tokens
