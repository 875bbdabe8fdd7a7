"""The memory-type contract: what a type keeps, and the exact history it sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..records import MemorySettings, Summary
from .history import HistoryReader
from .longterm import EntityReport, RecallReport
from .turns import TurnView


@dataclass(frozen=True)
class DroppedTurn:
    """A past turn the model no longer sees verbatim; `left_at_turn` when the type can tell."""

    turn: TurnView
    left_at_turn: int | None


@dataclass(frozen=True)
class MemoryView:
    """What a memory type holds before a turn: sent turns, summary, and what fell out."""

    memory_type: str
    turns: tuple[TurnView, ...] = ()
    summary: Summary | None = None
    summary_pending: tuple[int, int] | None = None
    dropped_count: int = 0
    dropped_recent: tuple[DroppedTurn, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    recall: RecallReport | None = None
    entities: EntityReport | None = None

    @property
    def history_range(self) -> tuple[int, int] | None:
        """First and last turn sent verbatim, or None."""
        if not self.turns:
            return None
        return self.turns[0].number, self.turns[-1].number


class MemoryType(Protocol):
    """One memory type: a name, a one-line explanation, and a view of the past."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def explanation(self) -> str: ...
    @property
    def uses_summary(self) -> bool: ...

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView: ...
