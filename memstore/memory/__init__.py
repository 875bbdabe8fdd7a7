"""Memory types and their registry; add a type by adding one entry to MEMORY_TYPES."""

from __future__ import annotations

from ..errors import InvalidInput
from .base import DroppedTurn, MemoryType, MemoryView
from .history import HistoryReader
from .longterm import EntityReport, LongTerm, RecalledTurn, RecallReport
from .turns import TurnView, group_turns
from .types import (
    BufferMemory,
    EntityMemory,
    NoMemory,
    RetrievalMemory,
    SummaryBufferMemory,
    SummaryMemory,
    TokenWindowMemory,
    WindowMemory,
)

MEMORY_TYPES: dict[str, MemoryType] = {
    t.name: t
    for t in (
        NoMemory(),
        BufferMemory(),
        WindowMemory(),
        TokenWindowMemory(),
        SummaryMemory(),
        SummaryBufferMemory(),
        RetrievalMemory(),
        EntityMemory(),
    )
}


def get_memory_type(name: str) -> MemoryType:
    """The registered type called `name`, or a clear error listing the known ones."""
    try:
        return MEMORY_TYPES[name]
    except KeyError:
        raise InvalidInput(f"Unknown memory type {name!r}; choose one of {', '.join(MEMORY_TYPES)}.") from None


__all__ = [
    "MEMORY_TYPES",
    "DroppedTurn",
    "EntityReport",
    "HistoryReader",
    "LongTerm",
    "MemoryType",
    "MemoryView",
    "RecallReport",
    "RecalledTurn",
    "TurnView",
    "get_memory_type",
    "group_turns",
]
