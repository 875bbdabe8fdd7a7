"""Export conversations as JSON and Markdown, and import exported JSON back, validated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from . import validation
from .config import Limits
from .errors import InvalidInput, MemoryLabError
from .markdown import fenced, literal
from .memory import MEMORY_TYPES
from .records import Conversation, MemorySettings, Message
from .sql.rows import MAX_PAGE
from .store_api import ImportedConversation, NewMessage, TranscriptStore
from .titles import FORK_SUFFIX
from .tokens import TokenCounter

FORMAT = "memorylab.conversations/1"
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_MESSAGES = 100_000
MAX_IMPORT_CONVERSATIONS = 1_000


def iter_messages(store: TranscriptStore, user_id: str, conversation_id: int) -> Iterator[Message]:
    """Every message of a conversation, oldest first, read in bounded pages."""
    pages: list[list[Message]] = []
    before: int | None = None
    while True:
        page = store.page(user_id, conversation_id, limit=MAX_PAGE, before_seq=before)
        if not page:
            break
        pages.append(page)
        before = page[0].seq
    for page in reversed(pages):
        yield from page


def conversation_record(store: TranscriptStore, user_id: str, conversation: Conversation) -> dict[str, Any]:
    return {
        "title": conversation.title,
        "settings": asdict(conversation.settings),
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {
                "turn": m.turn,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "created_at": m.created_at.isoformat(),
                **({"error": m.error} if m.error else {}),
            }
            for m in iter_messages(store, user_id, conversation.id)
        ],
    }


def export_conversations(store: TranscriptStore, user_id: str, conversation_ids: list[int] | None = None) -> dict:
    """One, several or (with None) all of a user's conversations as a JSON-ready dict."""
    if conversation_ids is None:
        conversations, offset = [], 0
        while True:
            batch = store.list_conversations(user_id, limit=MAX_PAGE, offset=offset)
            conversations.extend(batch)
            if len(batch) < MAX_PAGE:
                break
            offset += MAX_PAGE
    else:
        conversations = [store.get_conversation(user_id, cid) for cid in conversation_ids]
    return {"format": FORMAT, "conversations": [conversation_record(store, user_id, c) for c in conversations]}


def to_json(export: dict) -> str:
    return json.dumps(export, ensure_ascii=False, indent=2)


def to_markdown(export: dict) -> str:
    """A readable transcript. Titles are escaped and each message is a fenced block, so nothing stored can add a
    heading, load an image or run HTML when the file is opened."""
    out = []
    for conv in export["conversations"]:
        s = conv["settings"]
        out.append(f"# {literal(conv['title'])}\n")
        out.append(
            f"Memory: {literal(s['memory_type'])}, window {int(s['window_turns'])} turns, token limit "
            f"{int(s['max_tokens'])}. Created {str(conv['created_at'])[:19].replace('T', ' ')} UTC.\n"
        )
        for m in conv["messages"]:
            status = "" if m["status"] == "complete" else f" ({literal(m['status'])})"
            out.append(f"**Turn {int(m['turn'])} · {literal(m['role'])}{status}**\n\n{fenced(m['content'])}\n")
    return "\n".join(out)


def read_json_file(raw: bytes, *, max_bytes: int, fmt: str, what: str) -> dict:
    """A size-checked UTF-8 JSON object in the expected format, or a clear InvalidInput."""
    if len(raw) > max_bytes:
        raise InvalidInput(f"The file is {len(raw) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"The file is not valid UTF-8 JSON ({exc}).") from None
    except RecursionError:
        raise InvalidInput("The file nests its data too deeply to be a Memory Lab file.") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InvalidInput(f"The file is not {what} (format {fmt!r}).")
    return data


def settings_from_dict(raw: object, limits: Limits) -> MemorySettings:
    """Memory settings from an exported file, validated like settings typed in the app."""
    if not isinstance(raw, dict):
        raise InvalidInput("The settings are not an object.")
    try:
        settings = MemorySettings(**{k: raw[k] for k in MemorySettings.__dataclass_fields__ if k in raw})
    except TypeError as exc:
        raise InvalidInput(f"The settings are malformed ({exc}).") from None
    return validation.memory_settings(settings, frozenset(MEMORY_TYPES), limits)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInput(f"The file is not a Memory Lab export: {message}")


def parse_export(
    raw: bytes, counter: TokenCounter, limits: Limits | None = None
) -> list[tuple[str, MemorySettings, list[NewMessage]]]:
    """Validate an exported JSON file completely before anything is written."""
    limits = limits or Limits()
    data = read_json_file(raw, max_bytes=MAX_IMPORT_BYTES, fmt=FORMAT, what="a Memory Lab export")
    conversations = data.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise InvalidInput("The file is not a Memory Lab export: it holds no conversations.")
    _check(len(conversations) <= MAX_IMPORT_CONVERSATIONS, f"over {MAX_IMPORT_CONVERSATIONS} conversations.")
    parsed, total = [], 0
    for n, conv in enumerate(conversations, 1):
        _check(isinstance(conv, dict), f"conversation {n} is not an object.")
        try:
            settings = settings_from_dict(conv.get("settings") or {}, limits)
            title = validation.title(conv.get("title") or "Imported chat", limits)
        except MemoryLabError as exc:
            raise InvalidInput(f"Conversation {n}: {exc}") from None
        messages = conv.get("messages")
        _check(isinstance(messages, list), f"conversation {n} has no message list.")
        total += len(messages)
        _check(total <= MAX_IMPORT_MESSAGES, f"over {MAX_IMPORT_MESSAGES:,} messages.")
        rows = []
        for i, m in enumerate(messages, 1):
            where = f"conversation {n}, message {i}"
            _check(isinstance(m, dict), f"{where} is not an object.")
            _check(m.get("role") in ("user", "assistant"), f"{where} has role {m.get('role')!r}.")
            _check(isinstance(m.get("content"), str), f"{where} has no text.")
            status = m.get("status", "complete")
            _check(status in ("complete", "partial", "failed"), f"{where} has status {status!r}.")
            content = m["content"]
            _check(
                "\x00" not in content and len(content) <= limits.max_message_chars,
                f"{where} has a NUL byte or is over {limits.max_message_chars:,} characters.",
            )
            _check(
                validation.is_unicode(content),
                f"{where} holds characters that are not valid Unicode (lone surrogates).",
            )
            _check(m["role"] != "user" or bool(content.strip()), f"{where} is an empty user message.")
            rows.append(NewMessage(m["role"], content, counter.count(content), counter.name, status))
        parsed.append((title, settings, rows))
    return parsed


def import_export(store: TranscriptStore, user_id: str, raw: bytes, counter: TokenCounter) -> list[Conversation]:
    """Create new conversations from an exported file, in one transaction: all of it, or (if anything fails) none."""
    parsed = parse_export(raw, counter, getattr(store, "limits", None))
    return store.import_conversations(
        user_id, [ImportedConversation(title, settings, rows) for title, settings, rows in parsed]
    )


FORK_CHUNK_TURNS = 200


def fork_conversation(
    store: TranscriptStore, user_id: str, conversation_id: int, through_turn: int, settings: MemorySettings
) -> Conversation:
    """A new conversation holding turns 1 to `through_turn` of another, with its own memory settings.

    The original is untouched; the fork's summaries start afresh and catch up on its first turn.
    """
    source = store.get_conversation(user_id, conversation_id)
    if not 1 <= through_turn <= source.last_turn:
        raise InvalidInput(f"Choose a turn from 1 to {source.last_turn} to fork at.")
    title = f"{source.title[:150]}{FORK_SUFFIX}{through_turn}, {settings.memory_type})"
    fork = store.create_conversation(user_id, title, settings)
    try:
        for start in range(1, through_turn + 1, FORK_CHUNK_TURNS):
            rows = store.turns_between(user_id, conversation_id, start, min(through_turn, start + FORK_CHUNK_TURNS - 1))
            store.import_messages(
                user_id, fork.id, [NewMessage(m.role, m.content, m.tokens, m.tokenizer, m.status) for m in rows]
            )
    except MemoryLabError:
        store.delete_conversation(user_id, fork.id)
        raise
    return store.get_conversation(user_id, fork.id)


@dataclass(frozen=True)
class BranchTurn:
    """One turn of two conversations side by side, from their ledgers: tokens sent and replies."""

    turn: int
    a_tokens: int | None
    b_tokens: int | None
    a_reply: str | None
    b_reply: str | None


def compare_branches(
    store: TranscriptStore, user_id: str, a_id: int, b_id: int, *, max_turns: int = 200
) -> list[BranchTurn]:
    """Per turn, what each conversation's chat calls sent and got back (the newest call of each turn)."""

    def by_turn(conversation_id: int) -> dict[int, Any]:
        calls: dict[int, Any] = {}
        for call in store.list_calls(user_id, conversation_id=conversation_id, purpose="chat", limit=MAX_PAGE):
            if call.turn is not None and call.turn not in calls:
                calls[call.turn] = call
        return calls

    a, b = by_turn(a_id), by_turn(b_id)
    turns = sorted(set(a) | set(b))[-max_turns:]
    return [
        BranchTurn(
            t,
            a[t].counted_prompt_tokens if t in a else None,
            b[t].counted_prompt_tokens if t in b else None,
            a[t].reply if t in a else None,
            b[t].reply if t in b else None,
        )
        for t in turns
    ]
