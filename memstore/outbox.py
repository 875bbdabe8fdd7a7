"""What the database refused, kept on disk until it can be saved: a message to send again, a reply to save again.

When the database is locked or fails, the user's text and a reply the model already streamed must
not be lost, not even to a page reload. Each kept item is one small JSON file, written atomically,
so several app processes can share the folder without a lock.

The folder is the data folder's, which several databases can share (DATABASE_URL changed, a file
deleted and made again): each item names the database it belongs to by that database's own id, and
is saved or sent only into that one (Chat.save_unsent, Chat.send_unsent).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .database_identity import DatabaseIdentity, this_instance
from .errors import InvalidInput, StorageError
from .forgotten import redacted
from .records import CallDraft, ChatMessage, MessageStatus, Usage

UnsentKind = Literal["message", "reply"]
MAX_ITEMS_PER_USER = 200
MAX_ITEM_BYTES = 64_000_000  # a reply of 2 MB and a request filling a 128k-token context are far less


@dataclass(frozen=True)
class Unsent:
    """One thing the database refused: `text` is the user's message, or the reply with what saving it needs."""

    id: str
    user_id: str
    conversation_id: int
    kind: UnsentKind
    text: str
    error: str  # why it was not saved, as the user was told
    created_at: str  # ISO 8601, UTC
    turn: int | None = None  # replies: the turn they answer
    status: MessageStatus = "complete"
    reply_error: str | None = None  # replies: the model error kept with a partial reply
    tokens: int = 0
    tokenizer: str = ""
    call: CallDraft | None = field(default=None, compare=False)
    database_id: str = ""  # the id of the database it belongs to ("" in items kept before ids: unknown)
    database: str = ""  # where that database is, for people (a file path, or backend://host:port/name)
    instance: str = ""  # the app process that kept it: host name and process id

    def refusal(self, here: DatabaseIdentity) -> str | None:
        """Why it must not be saved or sent into the database `here` (one sentence), or None when it belongs there."""
        if here.holds(self.database_id):
            return None
        what = "message" if self.kind == "message" else "reply"
        if not self.database_id:
            return (
                f"This {what} was kept before Memory Lab recorded which database it belongs to, so nothing was "
                "saved; copy its text, or discard it."
            )
        return (
            f"This {what} belongs to another database ({self.database or 'unknown'}), not the one open now "
            f"({here.where}); nothing was saved. It stays kept: open that database to save it, or copy its text."
        )

    def check_belongs(self, here: DatabaseIdentity) -> None:
        """Raise InvalidInput (one sentence, nothing changed) unless it belongs to the database `here`."""
        if (sentence := self.refusal(here)) is not None:
            raise InvalidInput(sentence)


def new_unsent(
    user_id: str,
    conversation_id: int,
    kind: UnsentKind,
    text: str,
    error: str,
    *,
    database: DatabaseIdentity,
    **reply: Any,
) -> Unsent:
    """An item the database `database` refused, naming that database and this app process."""
    return Unsent(
        uuid.uuid4().hex,
        user_id,
        conversation_id,
        kind,
        text,
        error,
        datetime.now(UTC).isoformat(timespec="seconds"),
        **reply,
        database_id=database.id,
        database=database.where,
        instance=this_instance(),
    )


@dataclass(frozen=True)
class SortedItems:
    """A user's kept items as the chat page shows them, oldest first in each group."""

    here: tuple[Unsent, ...]  # this database, the open conversation
    elsewhere: tuple[Unsent, ...]  # this database, other conversations (which may have been deleted since)
    foreign: tuple[Unsent, ...]  # another database, or one not recorded: never saved here

    def conversations_elsewhere(self) -> dict[int, int]:
        """How many items wait in each other conversation of this database."""
        counts: dict[int, int] = {}
        for item in self.elsewhere:
            counts[item.conversation_id] = counts.get(item.conversation_id, 0) + 1
        return counts


def sort_items(items: list[Unsent], here: DatabaseIdentity, conversation_id: int | None) -> SortedItems:
    """Split kept items by where they belong: this conversation, another one of this database, another database."""
    mine = [i for i in items if here.holds(i.database_id)]
    return SortedItems(
        here=tuple(i for i in mine if i.conversation_id == conversation_id),
        elsewhere=tuple(i for i in mine if i.conversation_id != conversation_id),
        foreign=tuple(i for i in items if not here.holds(i.database_id)),
    )


def redacted_item(item: Unsent, text: str) -> Unsent:
    """The item with `text` replaced by the forgotten mark in its own text and in the request and reply it keeps."""
    call = item.call
    if call is not None:
        request = tuple(ChatMessage(m.role, redacted(m.content, text)) for m in call.request)
        call = replace(call, request=request, reply=redacted(call.reply, text))
    return replace(item, text=redacted(item.text, text), call=call)


def _encode(item: Unsent) -> str:
    data = asdict(item)
    return json.dumps(data, ensure_ascii=False)


def _decode(raw: str) -> Unsent:
    """An item from its file; ValueError, KeyError or TypeError for a file that is not one (it is then skipped)."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an item")
    _check(data)
    call = data.pop("call")
    if call is not None:
        if not isinstance(call, dict) or not isinstance(call.get("request"), list):
            raise ValueError("not a model call")
        if not isinstance(call.get("reply", ""), str):
            raise ValueError("a reply is text")
        if not all(isinstance(m, dict) and _all_str(m.get("role"), m.get("content")) for m in call["request"]):
            raise ValueError("a request's messages are text")
        call["request"] = tuple(ChatMessage(m["role"], m["content"]) for m in call["request"])
        call["usage"] = Usage(**call["usage"])
        call = CallDraft(**call)
    for name in ("database_id", "database", "instance"):  # a file that names no usable database names none
        if not isinstance(data.get(name, ""), str):
            data[name] = ""
    return Unsent(**data, call=call)


def _read(path: Path) -> Unsent | None:
    """The item in a file, or None when it is not one (damaged, crafted, too big to be one)."""
    try:
        if path.stat().st_size > MAX_ITEM_BYTES:
            return None
        return _decode(path.read_text(encoding="utf-8", errors="surrogatepass"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _all_str(*values: Any) -> bool:
    return all(isinstance(v, str) for v in values)


def _check(data: dict[str, Any]) -> None:
    """The fields the app reads have the types it reads them as (a damaged or crafted file is skipped, not shown)."""
    item_id = data.get("id")
    if not isinstance(item_id, str) or not item_id.isascii() or not item_id.isalnum() or len(item_id) > 64:
        raise ValueError("an item's id is letters and digits")
    if not _all_str(data.get("user_id"), data.get("text"), data.get("error"), data.get("created_at")):
        raise ValueError("an item's text fields are text")
    if data.get("kind") not in ("message", "reply"):
        raise ValueError("an item is a message or a reply")
    numbers = [data.get("conversation_id"), data.get("tokens", 0)] + ([data["turn"]] if data.get("turn") else [])
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise ValueError("an item's numbers are whole numbers")
    if not _all_str(data.get("status", ""), data.get("tokenizer", ""), data.get("reply_error") or ""):
        raise ValueError("an item's text fields are text")


class Outbox:
    """Kept items, one JSON file each, in a folder per user."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def beside(cls, data_dir: Path) -> Outbox:
        """The outbox in the data folder, or in the system's temporary folder when that one is not writable."""
        for folder in (data_dir / "outbox", Path(tempfile.gettempdir()) / "memorylab-outbox"):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".probe-{os.getpid()}"
                probe.write_text("")
                probe.unlink()
                return cls(folder)
            except OSError:
                continue
        return cls(Path(tempfile.gettempdir()) / "memorylab-outbox")

    def _user_dir(self, user_id: str) -> Path:
        return self.folder / hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def put(self, item: Unsent) -> Unsent:
        """Keep an item; raises StorageError only when even this folder refuses (the page then still shows it)."""
        folder = self._user_dir(item.user_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if sum(1 for _ in folder.glob("*.json")) >= MAX_ITEMS_PER_USER:
                raise StorageError(f"{MAX_ITEMS_PER_USER} unsaved items are already kept; save or discard some first.")
            tmp = folder / f".{item.id}.tmp"
            tmp.write_text(_encode(item), encoding="utf-8", errors="surrogatepass")
            os.replace(tmp, folder / f"{item.id}.json")
        except OSError as exc:
            raise StorageError(f"Could not keep it on disk either ({exc.strerror}).") from None
        return item

    def items(self, user_id: str, conversation_id: int | None = None) -> list[Unsent]:
        """Kept items of a user (of one conversation, when given), oldest first; unreadable files are skipped."""
        out = []
        for path in sorted(self._user_dir(user_id).glob("*.json")):
            item = _read(path)
            if item is None:
                continue
            if item.user_id == user_id and (conversation_id is None or item.conversation_id == conversation_id):
                out.append(item)
        return sorted(out, key=lambda i: i.created_at)

    def redact(self, user_id: str, text: str) -> int:
        """Replace a forgotten text in the user's kept items, so Save again cannot bring it back; returns the count."""
        changed, failed = 0, ""
        for path in sorted(self._user_dir(user_id).glob("*.json")):
            item = _read(path)
            if item is None or item.user_id != user_id:
                continue
            new = _encode(redacted_item(item, text))
            if new == _encode(item):
                continue
            tmp = path.with_name(f".{item.id}.tmp")
            try:
                tmp.write_text(new, encoding="utf-8", errors="surrogatepass")
                os.replace(tmp, path)
            except OSError as exc:
                failed = f"{exc.strerror}"  # the others are still redacted
                continue
            changed += 1
        if failed:
            raise StorageError(f"A kept unsaved item still holds the text: it could not be rewritten ({failed}).")
        return changed

    def remove(self, user_id: str, item_id: str) -> None:
        if not item_id.isalnum():
            return
        try:
            (self._user_dir(user_id) / f"{item_id}.json").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"Could not remove the kept copy ({exc.strerror}).") from None
