"""Read other apps' chat memory (LangChain, LangGraph, ChatGPT), read-only and streamed, into conversations."""

from __future__ import annotations

from .chatgpt import ChatGPTExport
from .common import (
    ConversationPreview,
    ImportResult,
    Source,
    SourceConversation,
    SourceMessage,
    import_source,
    preview_source,
)
from .langchain_sql import LangChainSqlHistory
from .langgraph import LangGraphCheckpoints
from .opening import SOURCE_KINDS, open_source

__all__ = [
    "SOURCE_KINDS",
    "ChatGPTExport",
    "ConversationPreview",
    "ImportResult",
    "LangChainSqlHistory",
    "LangGraphCheckpoints",
    "Source",
    "SourceConversation",
    "SourceMessage",
    "import_source",
    "open_source",
    "preview_source",
]
