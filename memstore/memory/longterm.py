"""What long-term memory reports to a memory type: recalled turns with their scores, entities with their summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..records import Entity, MemorySettings
from .turns import TurnView


@dataclass(frozen=True)
class RecalledTurn:
    """An old turn picked by similarity to the new message, and where it came from."""

    conversation_id: int
    conversation_title: str
    turn: TurnView
    score: float
    rank: int
    same_conversation: bool

    def why(self, min_score: float) -> str:
        where = (
            f"turn {self.turn.number} of this conversation"
            if self.same_conversation
            else f"turn {self.turn.number} of “{self.conversation_title}”"
        )
        return f"#{self.rank} most similar ({self.score:.2f} ≥ {min_score:.2f}), {where}"


@dataclass(frozen=True)
class RecallReport:
    """One recall: what was searched, what was picked, and the best turns that just missed."""

    query: str
    scope: str
    top_k: int
    min_score: float
    searched: int
    recalled: tuple[RecalledTurn, ...] = ()
    missed: tuple[tuple[int, int, float], ...] = ()  # (conversation id, turn, score) ranked but under the minimum
    notes: tuple[str, ...] = ()

    def details(self) -> dict:
        """The report as plain data for the ledger, so any past turn's recall can be shown again."""
        return {
            "query_chars": len(self.query),
            "scope": self.scope,
            "top_k": self.top_k,
            "min_score": self.min_score,
            "searched": self.searched,
            "recalled": [
                {
                    "conversation_id": r.conversation_id,
                    "conversation_title": r.conversation_title,
                    "turn": r.turn.number,
                    "score": round(r.score, 4),
                    "rank": r.rank,
                    "same_conversation": r.same_conversation,
                }
                for r in self.recalled
            ],
            "missed": [{"conversation_id": c, "turn": t, "score": round(s, 4)} for c, t, s in self.missed],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class EntityReport:
    """The conversation's entities, and which the new message mentions (those are injected)."""

    known: tuple[Entity, ...] = ()
    injected: tuple[Entity, ...] = ()
    notes: tuple[str, ...] = ()

    def details(self) -> dict:
        return {
            "known": len(self.known),
            "injected": [{"name": e.name, "summary": e.summary, "turn": e.turn} for e in self.injected],
            "notes": list(self.notes),
        }


class LongTerm(Protocol):
    """Reads of long-term memory for one turn of one conversation; the new message is the query."""

    query: str

    def recall(self, settings: MemorySettings, *, before_turn: int) -> RecallReport: ...
    def entities(self) -> EntityReport: ...
