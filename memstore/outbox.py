"""What the database refused, kept on disk until it can be saved: a message to send again, a reply to save again.

When the database is locked or fails, the user's text and a reply the model already streamed must
not be lost, not even to a page reload. Each kept item is one small JSON file, written atomically,
so several app processes can share the folder without a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .errors import StorageError
from .records import CallDraft, ChatMessage, MessageStatus, Usage

UnsentKind = Literal["message", "reply"]
MAX_ITEMS_PER_USER = 200


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


def new_unsent(user_id: str, conversation_id: int, kind: UnsentKind, text: str, error: str, **reply: Any) -> Unsent:
    return Unsent(
        uuid.uuid4().hex,
        user_id,
        conversation_id,
        kind,
        text,
        error,
        datetime.now(UTC).isoformat(timespec="seconds"),
        **reply,
    )


def _encode(item: Unsent) -> str:
    data = asdict(item)
    return json.dumps(data, ensure_ascii=False)


def _decode(raw: str) -> Unsent:
    data = json.loads(raw)
    call = data.pop("call")
    if call is not None:
        call["request"] = tuple(ChatMessage(m["role"], m["content"]) for m in call["request"])
        call["usage"] = Usage(**call["usage"])
        call = CallDraft(**call)
    return Unsent(**data, call=call)


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
            try:
                item = _decode(path.read_text(encoding="utf-8", errors="surrogatepass"))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if item.user_id == user_id and (conversation_id is None or item.conversation_id == conversation_id):
                out.append(item)
        return sorted(out, key=lambda i: i.created_at)

    def remove(self, user_id: str, item_id: str) -> None:
        if not item_id.isalnum():
            return
        try:
            (self._user_dir(user_id) / f"{item_id}.json").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"Could not remove the kept copy ({exc.strerror}).") from None
