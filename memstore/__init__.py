"""Memory Lab's core: storage, memory types, model clients and the chat turn (no Streamlit here)."""

from __future__ import annotations

from .chat import Chat, TurnResult, TurnRun
from .config import Limits, Settings
from .errors import ConfigError, InvalidInput, LLMError, MemoryLabError, NotFound, StorageError
from .facts import Fact, FactSet, select_facts, with_session_fact, without_session_fact
from .llm import ChatClient, OpenAIClient, client_from_settings
from .memory import MEMORY_TYPES, MemoryView, get_memory_type
from .payload import Payload, Section
from .records import ChatMessage, Conversation, MemorySettings, Message, ModelCall, Preference, Summary, Usage
from .sql_store import SqlStore
from .store_api import NewMessage, PreferenceStore, TranscriptStore
from .summarizer import SummaryUpdate


def open_store(settings: Settings) -> SqlStore:
    """Open the configured database, creating and migrating it as needed."""
    return SqlStore.open(settings.database_url, limits=settings.limits)


__all__ = [
    "MEMORY_TYPES",
    "Chat",
    "ChatClient",
    "ChatMessage",
    "ConfigError",
    "Conversation",
    "Fact",
    "FactSet",
    "InvalidInput",
    "LLMError",
    "Limits",
    "MemoryLabError",
    "MemorySettings",
    "MemoryView",
    "Message",
    "ModelCall",
    "NewMessage",
    "NotFound",
    "OpenAIClient",
    "Payload",
    "Preference",
    "PreferenceStore",
    "Section",
    "Settings",
    "SqlStore",
    "StorageError",
    "Summary",
    "SummaryUpdate",
    "TranscriptStore",
    "TurnResult",
    "TurnRun",
    "Usage",
    "client_from_settings",
    "get_memory_type",
    "open_store",
    "select_facts",
    "with_session_fact",
    "without_session_fact",
]
