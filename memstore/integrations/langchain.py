"""A LangChain chat history kept in memstore: switch one import, and the app's sessions appear in Memory Lab.

    from memstore.integrations.langchain import MemstoreChatMessageHistory
    history = MemstoreChatMessageHistory("session-42", window_turns=3)   # the last 3 turns, one indexed read

Each session is a conversation of the user (default "local") in Memory Lab's database (DATABASE_URL, or the app's
default SQLite file), so it shows live on the Conversations page and runs through every memory type there.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from ..config import Settings
from ..errors import InvalidInput, NotFound
from ..importers.common import source_of
from ..importers.keys import shown_key
from ..importers.lc_messages import from_langchain
from ..memory.history import HistoryReader
from ..memory.turns import TurnView
from ..records import MemorySettings, Message
from ..sql_store import SqlStore
from ..store_api import NewMessage
from ..tokens import TokenCounter, counter_for_model

READ_CHUNK_TURNS = 200
SENT = ("complete", "partial")  # failed attempts and forgotten messages are never read back


class MemstoreChatMessageHistory(BaseChatMessageHistory):
    """LangChain's BaseChatMessageHistory over memstore: user-scoped, indexed, WAL on SQLite, or PostgreSQL.

    `messages` returns every message since the last clear, as LangChain's histories do; with `window_turns` or
    `max_tokens` it returns only the newest whole answered turns, read in bounded slices (what Memory Lab's window
    and token window send), so its cost does not grow with the conversation. `clear()` is Memory Lab's "Clear
    memory": reads start after it, and the transcript stays (undo it on the chat page until the next turn).
    Human and AI messages are kept; other kinds (system, tool) are refused with InvalidInput.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: SqlStore | None = None,
        database_url: str | None = None,
        user_id: str = "local",
        window_turns: int | None = None,
        max_tokens: int | None = None,
        counter: TokenCounter | None = None,
        settings: MemorySettings | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id.strip():
            raise InvalidInput("A session id is a non-empty string.")
        if window_turns is not None and max_tokens is not None:
            raise InvalidInput("Bound the history by window_turns or by max_tokens, not both.")
        if (window_turns is not None and window_turns < 0) or (max_tokens is not None and max_tokens < 0):
            raise InvalidInput("window_turns and max_tokens are not negative.")
        self.session_id = session_id
        self.user_id = user_id
        self.window_turns = window_turns
        self.max_tokens = max_tokens
        self.store = store or _shared_store(database_url or Settings.from_env().database_url)
        self.counter = counter or counter_for_model("gpt-4o-mini")
        self._settings = settings or MemorySettings(
            memory_type="token_window"
            if max_tokens is not None
            else "window"
            if window_turns is not None
            else "buffer",
            window_turns=window_turns if window_turns is not None else MemorySettings.window_turns,
            max_tokens=max_tokens if max_tokens is not None else MemorySettings.max_tokens,
        )
        self._conversation_id: int | None = None

    @property
    def conversation_id(self) -> int:
        """The Memory Lab conversation holding this session (made on first use; again if deleted in the app)."""
        if self._conversation_id is None:
            title = " ".join(shown_key(self.session_id).split())[:200] or "LangChain session"
            self._conversation_id = self.store.conversation_for_source(
                self.user_id, source_of("langchain", self.session_id), title=title, settings=self._settings
            ).id
        return self._conversation_id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        try:
            return self._read()
        except NotFound:  # deleted in the app meanwhile: a new, empty conversation
            self._conversation_id = None
            return self._read()

    def _read(self) -> list[BaseMessage]:
        conv = self.store.get_conversation(self.user_id, self.conversation_id)
        if self.window_turns is None and self.max_tokens is None:
            out: list[BaseMessage] = []
            for start in range(conv.memory_from_turn, conv.last_turn + 1, READ_CHUNK_TURNS):
                end = min(conv.last_turn, start + READ_CHUNK_TURNS - 1)
                rows = self.store.turns_between(self.user_id, conv.id, start, end)
                out.extend(_to_langchain(m) for m in rows if m.status in SENT)
            return out
        reader = HistoryReader(
            self.store, self.user_id, conv.id, conv.last_turn, self.counter, first_turn=conv.memory_from_turn
        )
        turns = (
            reader.last_turns(self.window_turns)
            if self.window_turns is not None
            else reader.newest_within(self.max_tokens or 0)[0]
        )
        return _turn_messages(turns)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store the messages in one transaction; a human message starts a new turn."""
        rows = []
        for message in messages:
            source = from_langchain(message)
            if source.role not in ("user", "assistant"):
                raise InvalidInput(
                    f"memstore keeps human and AI messages; a {source.kind!r} message is not stored "
                    "(a system prompt belongs in the prompt template)."
                )
            rows.append(NewMessage(source.role, source.text, self.counter.count(source.text), self.counter.name))
        if not rows:
            return
        try:
            self.store.import_messages(self.user_id, self.conversation_id, rows)
        except NotFound:
            self._conversation_id = None
            self.store.import_messages(self.user_id, self.conversation_id, rows)

    def clear(self) -> None:
        """Memory Lab's Clear memory: later reads start after the newest turn; nothing is deleted."""
        try:
            conv = self.store.get_conversation(self.user_id, self.conversation_id)
            if conv.memory_from_turn <= conv.last_turn:  # else nothing since the last clear: already empty
                self.store.clear_memory(self.user_id, conv.id)
        except NotFound:
            self._conversation_id = None  # deleted in the app: the next use starts an empty one


@cache
def _shared_store(database_url: str) -> SqlStore:
    """One store (engine and connection pool) per database per process: an app makes a history per request."""
    return SqlStore.open(database_url)


def _to_langchain(message: Message) -> BaseMessage:
    cls = HumanMessage if message.role == "user" else AIMessage
    return cls(content=message.content, id=str(message.id))


def _turn_messages(turns: Sequence[TurnView]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for turn in turns:
        out.extend(_to_langchain(m) for m in (turn.user, turn.reply) if m is not None)
    return out
