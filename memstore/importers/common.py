"""What every import source yields, what a preview shows, and the one path that stores an import."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from .. import validation
from ..config import DEFAULT_SYSTEM_PROMPT, Limits
from ..errors import InvalidInput
from ..records import Conversation, MemorySettings
from ..store_api import ImportedConversation, NewMessage, TranscriptStore
from ..tokens import TokenCounter
from .keys import MAX_KEY_CHARS as MAX_KEY_CHARS  # the ChatGPT reader keeps ids within it
from .keys import shown_key, stored_key

SourceRole = Literal["user", "assistant", "system", "tool", "unknown"]
FIRST_LINE_CHARS = 120
NAMED_SKIPS = 3  # conversations that cannot be imported, named in the result's sentence
NAMED_KINDS = 5  # kinds of left-out messages named in one line; the rest are counted


@dataclass(frozen=True)
class SourceMessage:
    """One message as the source holds it: a role we understand, its text, and the source's own name for its type."""

    role: SourceRole
    text: str
    kind: str  # the source's type: "human", "ai", "tool", "AIMessage", "assistant text", …
    created_at: datetime | None = None
    note: str = ""  # what else it did: "calls search"
    omitted: tuple[tuple[str, int], ...] = ()  # parts that are not text, by kind: (("image_url", 1),)


@dataclass(frozen=True)
class SourceConversation:
    """One session, thread or ChatGPT conversation, with its messages in order."""

    key: str  # the source's id for it: session_id, thread_id, ChatGPT conversation id
    title: str
    messages: tuple[SourceMessage, ...]
    created_at: datetime | None = None
    problem: str | None = None  # set when the source itself cannot be read for this conversation


class Source(Protocol):
    """A read-only source of conversations, read in a stream: one conversation in memory at a time."""

    kind: str  # "LangChain SQLChatMessageHistory", …
    label: str  # where it is, for people (passwords removed)
    origin: str  # a stable id of the source, for each conversation's `source` (see source_of)

    def conversations(self, keys: Collection[str] | None = None) -> Iterator[SourceConversation]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What importing one conversation stores: a system prompt, the turns' messages, and what it leaves out."""

    system_prompt: str | None
    messages: tuple[tuple[str, str, datetime | None], ...]  # (role, text, created_at), user/assistant only
    left_out: dict[str, int]  # reason -> how many source messages
    problem: str | None
    system_from: int | None = None  # which source message became the system prompt (its index)

    @property
    def turns(self) -> int:
        return sum(1 for role, _, _ in self.messages if role == "user")


@dataclass(frozen=True)
class ConversationPreview:
    """One line of the preview: what the source holds and what an import would make of it."""

    key: str
    title: str
    message_count: int  # as the source counts them, every type included
    turns: int
    first_line: str
    left_out: dict[str, int]
    problem: str | None
    imported_as: int | None  # the conversation it was imported as before
    created_at: datetime | None = None

    @property
    def importable(self) -> bool:
        return self.problem is None and self.imported_as is None


@dataclass(frozen=True)
class ImportResult:
    created: list[Conversation]
    already_imported: int = 0
    not_importable: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()  # (title, why) of the first conversations that cannot be imported

    def sentence(self) -> str:
        n = len(self.created)
        parts = [f"Imported {n:,} conversation{'s' if n != 1 else ''}"]
        if self.already_imported:
            parts.append(f"{self.already_imported:,} imported before were skipped")
        if self.not_importable:
            named = "; ".join(f"“{title}”: {why}" for title, why in self.skipped)
            more = self.not_importable - len(self.skipped)
            parts.append(
                f"{self.not_importable:,} that cannot be imported "
                + ("was" if self.not_importable == 1 else "were")
                + " skipped"
                + (f" ({named}" + (f"; and {more:,} more" if more > 0 else "") + ")" if named else "")
            )
        if self.left_out:
            parts.append("not turns (left out or joined): " + describe_left_out(self.left_out))
        return "; ".join(parts) + "."


def describe_left_out(left_out: dict[str, int], most: int = NAMED_KINDS) -> str:
    """ "2 × tool call, 1 × system message": counts by kind, in one line; past `most` kinds, the commonest."""
    shown = sorted(left_out.items())
    if len(shown) > most:
        shown = sorted(left_out.items(), key=lambda item: (-item[1], item[0]))[:most]
    line = ", ".join(f"{count:,} × {reason}" for reason, count in shown)
    return line + (f", and {len(left_out) - most:,} more kinds" if len(left_out) > most else "")


def source_of(origin: str, key: str) -> str:
    """The `source` stored on an imported conversation: unique per source and session, at most 500 characters."""
    return f"{origin}#{stored_key(key)}"


def digest_origin(kind: str, locator: str | bytes) -> str:
    """A short stable id for a source: its kind and a hash of where it is (or, for an upload, of its bytes)."""
    data = locator.encode("utf-8", "surrogatepass") if isinstance(locator, str) else locator
    return f"{kind}:{hashlib.sha256(data).hexdigest()[:20]}"


def plan(conversation: SourceConversation, limits: Limits) -> Plan:
    """Turns from a source conversation: user messages start turns, a turn's assistant texts make its reply.

    The first system message becomes the conversation's system prompt; tool messages, tool calls and further
    system messages are not turns, and are counted by kind, as are messages of types nobody knows.
    """
    left_out: Counter[str] = Counter()
    rows: list[tuple[str, str, datetime | None]] = []
    system_prompt: str | None = None
    system_from: int | None = None
    problem = conversation.problem
    for n, m in enumerate(conversation.messages, 1):
        if m.role == "unknown":
            left_out[f"message of unknown type {m.kind!r}"] += 1
            continue
        if m.role == "tool":
            left_out["tool message"] += 1
            continue
        if m.role == "system":
            usable = bool(m.text.strip()) and len(m.text) <= limits.max_system_prompt_chars
            if system_prompt is None and not rows and usable:
                system_prompt, system_from = m.text, n - 1
                problem = problem or _unstorable("system", m.text, n, limits)  # as the store would refuse it
                continue
            left_out["system message"] += 1
            continue
        for part, count in m.omitted:
            left_out[f"{part} part (not text)"] += count
        if not m.text.strip():
            left_out["tool call" if m.role == "assistant" else "empty user message"] += 1
            continue
        if problem is None:
            problem = _unstorable(m.role, m.text, n, limits)
        if m.role == "assistant" and rows and rows[-1][0] == "assistant":
            role, text, at = rows[-1]
            left_out["assistant message joined to the reply before it"] += 1
            joined_chars = len(text) + 2 + len(m.text)
            if joined_chars > limits.max_message_chars:  # each part under the limit, the reply they make over it
                problem = problem or (
                    f"message {n:,} joins the reply before it, which makes a reply of {joined_chars:,} characters; "
                    f"the limit is {limits.max_message_chars:,}"
                )
                continue  # not joined: a reply never grows past the limit, so many parts cost no more than one
            rows[-1] = (role, text + "\n\n" + m.text, at)  # one reply per turn: what the user saw, in order
            continue
        rows.append((m.role, m.text, m.created_at))
    if problem is None and not rows:
        problem = "it has no messages from the user or the assistant"
    return Plan(system_prompt, tuple(rows), dict(left_out), problem, system_from)


def _unstorable(role: str, text: str, n: int, limits: Limits) -> str | None:
    """Why this message cannot be stored, as the store would refuse it, or is over the one message limit."""
    if "\x00" in text:
        return f"message {n:,} contains a NUL byte, which cannot be stored"
    if role != "system" and len(text) > limits.max_message_chars:  # a reply too: what a source says is bounded
        return f"message {n:,} is {len(text):,} characters; the limit is {limits.max_message_chars:,}"
    if not validation.is_unicode(text):
        return f"message {n:,} holds characters that are not valid Unicode"
    return None


def _first_line(conversation: SourceConversation) -> str:
    for m in conversation.messages:
        if m.role == "user" and m.text.strip():
            line = " ".join(m.text.split())
            return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"
    return ""


def preview_source(
    source: Source, store: TranscriptStore, user_id: str, limits: Limits | None = None
) -> Iterator[ConversationPreview]:
    """One preview line per conversation, streamed; marks the ones imported before."""
    limits = limits or Limits()
    batch: list[ConversationPreview] = []  # small lines only: each conversation is let go once it is described

    def flush() -> Iterator[ConversationPreview]:
        found = store.find_sources(user_id, [source_of(source.origin, p.key) for p in batch])
        for line in batch:
            yield replace(line, imported_as=found.get(source_of(source.origin, line.key)))
        batch.clear()

    for conv in source.conversations():
        p = plan(conv, limits)
        batch.append(
            ConversationPreview(
                key=conv.key,
                title=conv.title,
                message_count=len(conv.messages),
                turns=p.turns,
                first_line=_first_line(conv),
                left_out=p.left_out,
                problem=p.problem,
                imported_as=None,
                created_at=conv.created_at,
            )
        )
        del conv, p
        if len(batch) >= 200:
            yield from flush()
    yield from flush()


def import_source(
    store: TranscriptStore,
    user_id: str,
    source: Source,
    counter: TokenCounter,
    *,
    keys: Collection[str] | None = None,
    settings: MemorySettings | None = None,
) -> ImportResult:
    """Import the chosen conversations (None: every importable one) in one transaction: all of them, or none.

    Conversations imported before, and ones that cannot be stored, are skipped and counted; a source that cannot
    be read stops the import with one sentence and nothing written.
    """
    limits: Limits = getattr(store, "limits", None) or Limits()
    base = settings or MemorySettings(memory_type="buffer")
    counts = Counter[str]()
    offered: list[tuple[str, dict[str, int]]] = []
    skipped: list[tuple[str, str]] = []

    def items() -> Iterator[ImportedConversation]:
        for conv in source.conversations(keys):
            p = plan(conv, limits)
            if p.problem is not None:
                counts["problem"] += 1
                if len(skipped) < NAMED_SKIPS:
                    skipped.append((_title(conv, source, limits), p.problem))
                continue
            offered.append((source_of(source.origin, conv.key), p.left_out))
            yield ImportedConversation(
                title=_title(conv, source, limits),
                settings=replace(base, system_prompt=p.system_prompt or base.system_prompt or DEFAULT_SYSTEM_PROMPT),
                messages=_rows(p, counter),
                source=offered[-1][0],
                created_at=conv.created_at,
            )

    try:
        created = store.import_conversations(user_id, items(), skip_existing=True)
    except OSError as exc:  # the source failed mid-stream: the transaction is rolled back
        raise InvalidInput(f"The source could not be read to the end ({exc}); nothing was imported.") from None
    made = {c.id for c in created}
    found = store.find_sources(user_id, [src for src, _ in offered]) if created else {}
    left_out: Counter[str] = Counter()
    for src, counted in offered:
        if found.get(src) in made:
            left_out.update(counted)
    return ImportResult(created, len(offered) - len(created), counts["problem"], dict(left_out), tuple(skipped))


def _rows(p: Plan, counter: TokenCounter) -> Iterable[NewMessage]:
    for role, text, at in p.messages:
        yield NewMessage(role, text, counter.count(text), counter.name, created_at=at)


def _title(conv: SourceConversation, source: Source, limits: Limits) -> str:
    title = " ".join(conv.title.split())[: limits.max_title_chars]
    if title and "\x00" not in title and validation.is_unicode(title):
        return title
    return f"{source.kind} {shown_key(conv.key)}"[: limits.max_title_chars]
