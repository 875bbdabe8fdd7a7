"""The memory types, after LangChain's classic memory module, each a small read-only view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..records import MemorySettings, Summary
from .base import DroppedTurn, MemoryView
from .history import HistoryReader
from .turns import TurnView

DROPPED_SHOWN = 3


def _dropped_before(history: HistoryReader, first_kept: int, *, window_turns: int | None) -> tuple[DroppedTurn, ...]:
    """The newest few turns before `first_kept`, with the turn each left at when a window says."""
    if not history.explain:
        return ()
    older = history.turns(first_kept - DROPPED_SHOWN, first_kept - 1)
    return tuple(
        DroppedTurn(t, t.number + window_turns + 1 if window_turns is not None else None) for t in reversed(older)
    )


@dataclass(frozen=True)
class NoMemory:
    name: str = "none"
    label: str = "No memory"
    explanation: str = "Sends only the system prompt and the new message: the model forgets every earlier turn."
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        last = history.through_turn
        return MemoryView(
            self.name,
            dropped_count=last,
            dropped_recent=_dropped_before(history, last + 1, window_turns=None),
            notes=("No earlier turn is sent.",) if last else (),
        )


@dataclass(frozen=True)
class BufferMemory:
    name: str = "buffer"
    label: str = "Buffer (every turn)"
    explanation: str = "Sends every earlier turn word for word; the payload grows with the conversation."
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        # Every turn, but never more than the model's context window can take.
        kept, first_over = history.newest_within(context_tokens)
        notes: tuple[str, ...] = ()
        dropped = 0
        if first_over is not None:
            dropped = first_over.number
            notes = (
                f"The whole conversation is over the model's {context_tokens:,}-token context window; "
                f"turns 1–{first_over.number} are left out.",
            )
        return MemoryView(
            self.name,
            turns=tuple(kept),
            dropped_count=dropped,
            notes=notes,
            dropped_recent=_dropped_before(history, kept[0].number, window_turns=None) if kept and dropped else (),
        )


@dataclass(frozen=True)
class WindowMemory:
    name: str = "window"
    label: str = "Window (last k turns)"
    explanation: str = "Sends the last k turns, where a turn is your message and its reply (k turns = 2k messages)."
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        return _window_view(self.name, history, settings, ())


def _token_tail(history: HistoryReader, max_tokens: int) -> tuple[list[TurnView], int, tuple[str, ...]]:
    """Newest whole turns under `max_tokens`; the first turn kept; notes for the panel."""
    kept, first_over = history.newest_within(max_tokens)
    first_kept = kept[0].number if kept else history.through_turn + 1
    notes: tuple[str, ...] = ()
    if first_over is not None and first_over.number == history.through_turn:
        notes = (
            f"The last turn alone is {first_over.tokens:,} tokens, over the {max_tokens:,}-token limit,"
            " so no turn fits.",
        )
    return kept, first_kept, notes


@dataclass(frozen=True)
class TokenWindowMemory:
    name: str = "token_window"
    label: str = "Token window"
    explanation: str = "Sends the newest whole turns that fit the token limit, counted with the model's tokenizer."
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        kept, first_kept, notes = _token_tail(history, settings.max_tokens)
        tokens = sum(t.tokens for t in kept)
        return MemoryView(
            self.name,
            turns=tuple(kept),
            dropped_count=first_kept - 1,
            dropped_recent=_dropped_before(history, first_kept, window_turns=None),
            notes=notes + (f"History uses {tokens:,} of {settings.max_tokens:,} tokens.",),
        )


def _summary_state(
    summary: Summary | None, needed_through: int, starts: str, first_turn: int = 1
) -> tuple[tuple[int, int] | None, int, tuple[str, ...]]:
    """What the summary still has to fold, how many turns it never covered, and notes (memory starts at first_turn)."""
    covered = summary.through_turn if summary else first_turn - 1
    pending = (covered + 1, needed_through) if needed_through > covered else None
    never = (summary.from_turn - 1) if summary else first_turn - 1
    notes = []
    if summary is None and needed_through < first_turn:
        notes.append(f"No summary yet: {starts}.")
    if summary is not None:
        notes.append(f"Summary covers turns {summary.from_turn}–{summary.through_turn}.")
    if never >= first_turn:
        notes.append(f"Turns {first_turn}–{never} were never summarized (they fell out before this summary began).")
    if pending:
        notes.append(f"Turns {pending[0]}–{pending[1]} will be folded into the summary before the next call.")
    return pending, never, tuple(notes)


@dataclass(frozen=True)
class SummaryMemory:
    name: str = "summary"
    label: str = "Summary"
    explanation: str = "Sends a running summary of the conversation, rewritten by a model call after each turn."
    uses_summary: bool = True

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        summary = history.summary(self.name)
        pending, never, notes = _summary_state(
            summary, history.through_turn, "it starts after the first turn", history.first_turn
        )
        return MemoryView(self.name, summary=summary, summary_pending=pending, dropped_count=never, notes=notes)


@dataclass(frozen=True)
class SummaryBufferMemory:
    name: str = "summary_buffer"
    label: str = "Summary + buffer"
    explanation: str = (
        "Sends the newest turns that fit the token limit word for word, and a summary of the turns that fell out."
    )
    uses_summary: bool = True

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        kept, first_kept, tail_notes = _token_tail(history, settings.max_tokens)
        summary = history.summary(self.name)
        pending, never, notes = _summary_state(
            summary, first_kept - 1, "turns are summarized once they fall out of the token limit", history.first_turn
        )
        return MemoryView(
            self.name,
            turns=tuple(kept),
            summary=summary,
            summary_pending=pending,
            dropped_count=never,
            notes=tail_notes + notes,
        )


def _first_kept(history: HistoryReader, k: int) -> int:
    """The first turn of the window: k answered turns back (a turn with no reply is not counted)."""
    kept = history.last_turns(k)
    return kept[0].number if kept else history.through_turn + 1


def _window_view(
    name: str, history: HistoryReader, settings: MemorySettings, notes: tuple[str, ...], **long_term: Any
) -> MemoryView:
    """The last k answered turns, the newest turns that fell out (with the turn each left at), and notes."""
    k = settings.window_turns
    kept = tuple(history.last_turns(k))
    first_kept = kept[0].number if kept else history.through_turn + 1
    older: tuple[DroppedTurn, ...] = ()
    if history.explain and first_kept > 1:
        fell = [t for t in history.turns(first_kept - DROPPED_SHOWN, first_kept - 1) if t.reply is not None]
        older = tuple(DroppedTurn(t, t.number + k + 1) for t in reversed(fell))
    return MemoryView(
        name,
        turns=kept,
        dropped_count=max(0, first_kept - 1),
        dropped_recent=older,
        notes=(
            f"{'Window' if name == 'window' else 'Short-term'}: the last {k} "
            f"turn{'s' if k != 1 else ''} ({2 * k} messages).",
        )
        + notes,
        **long_term,
    )


@dataclass(frozen=True)
class RetrievalMemory:
    name: str = "retrieval"
    label: str = "Retrieval (window + recalled turns)"
    explanation: str = (
        "Sends the last k turns, plus the older turns most similar in meaning to your new message "
        "(top k above a minimum score), from this conversation or all of yours."
    )
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        if history.long_term is None:
            return _window_view(self.name, history, settings, ("Recall is unavailable: no embedding model.",))
        first_kept = _first_kept(history, settings.window_turns)
        recall = history.long_term.recall(settings, before_turn=max(1, first_kept))
        return _window_view(self.name, history, settings, recall.notes, recall=recall)


@dataclass(frozen=True)
class EntityMemory:
    name: str = "entity"
    label: str = "Entity (window + what is known about names)"
    explanation: str = (
        "Sends the last k turns, plus a running summary of each person, place or thing your new "
        "message mentions; the summaries are updated by a model call after each turn."
    )
    uses_summary: bool = False

    def view(self, history: HistoryReader, settings: MemorySettings, *, context_tokens: int) -> MemoryView:
        if history.long_term is None:
            return _window_view(self.name, history, settings, ("Entities are unavailable here.",))
        entities = history.long_term.entities()
        return _window_view(self.name, history, settings, entities.notes, entities=entities)
