"""Bounded reads of a conversation's past turns, as memory types see them."""

from __future__ import annotations

from ..records import Summary
from ..store_api import TranscriptStore
from ..tokens import TokenCounter
from .longterm import LongTerm
from .turns import TurnView, group_turns

FIRST_BATCH_TURNS = 8
MAX_BATCH_TURNS = 256
MAX_UNANSWERED_SKIPPED = 256  # a window reaches back past at most this many unanswered turns


class HistoryReader:
    """Past turns of one conversation up to `through_turn`, read in bounded, indexed slices."""

    def __init__(
        self,
        store: TranscriptStore,
        user_id: str,
        conversation_id: int,
        through_turn: int,
        counter: TokenCounter,
        *,
        explain: bool = True,
        long_term: LongTerm | None = None,
        first_turn: int = 1,
    ):
        self.explain = explain  # False on a turn's own path: read only what the request needs, not the panel's extras
        self.long_term = long_term  # recall and entities, when the chat has them
        self.store = store
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.through_turn = through_turn
        self.first_turn = max(first_turn, 1)  # memory starts here (after a clear); the transcript keeps the rest
        self.counter = counter
        self.unanswered: set[int] = set()  # turns seen with no reply: never sent, never counted

    def _answered(self, turns: list[TurnView]) -> list[TurnView]:
        """Turns that got a reply; the others would put two user messages in a row, so they are skipped."""
        kept = [t for t in turns if t.reply is not None]
        if len(kept) < len(turns):
            self.unanswered.update(t.number for t in turns if t.reply is None)
        return kept

    def turns(self, from_turn: int, to_turn: int) -> list[TurnView]:
        """Turns in [from_turn, to_turn], clipped to the past."""
        to_turn = min(to_turn, self.through_turn)
        from_turn = max(from_turn, self.first_turn)
        if to_turn < from_turn:
            return []
        messages = self.store.turns_between(self.user_id, self.conversation_id, from_turn, to_turn)
        return group_turns(messages, self.counter)

    def last_turns(self, count: int) -> list[TurnView]:
        """The newest `count` answered turns (k counts exchanges, not messages; a turn with no reply is skipped)."""
        if count <= 0:
            return []
        kept: list[TurnView] = []
        end, span = self.through_turn, count
        while end >= self.first_turn and len(kept) < count and len(self.unanswered) <= MAX_UNANSWERED_SKIPPED:
            start = max(self.first_turn, end - span + 1)
            batch = self._answered(self.turns(start, end))
            kept = batch[len(batch) - (count - len(kept)) :] + kept if len(batch) > count - len(kept) else batch + kept
            end, span = start - 1, min(max(count - len(kept), FIRST_BATCH_TURNS), MAX_BATCH_TURNS)
        return kept

    def newest_within(
        self, max_tokens: int, *, end_turn: int | None = None, start_turn: int = 1
    ) -> tuple[list[TurnView], TurnView | None]:
        """The newest whole turns whose tokens fit `max_tokens`, and the first turn that did not fit.

        Reads backwards in growing batches of turns, so the cost depends on the limit,
        never on the length of the conversation.
        """
        end = self.through_turn if end_turn is None else min(end_turn, self.through_turn)
        start_turn = max(start_turn, self.first_turn)
        kept: list[TurnView] = []
        used = 0
        batch = FIRST_BATCH_TURNS
        while end >= start_turn:
            start = max(start_turn, end - batch + 1)
            for turn in reversed(self._answered(self.turns(start, end))):
                if used + turn.tokens > max_tokens:
                    kept.reverse()
                    return kept, turn
                used += turn.tokens
                kept.append(turn)
            end = start - 1
            batch = min(batch * 2, MAX_BATCH_TURNS)
        kept.reverse()
        return kept, None

    def summary(self, memory_type: str) -> Summary | None:
        return self.store.latest_summary(self.user_id, self.conversation_id, memory_type)
