"""Long-term reads for one turn: turns recalled by meaning (bounded vector scan) and entities the message names.

How recall scales: every past turn is embedded once, when a turn after it is prepared under
retrieval memory, and stored with the conversation as int8 (one byte per dimension); every 256
stored turns are sealed into one row. A recall embeds the new message and compares it with at most
RECALL_SCAN_TURNS stored vectors, the newest in scope, read as a few sealed rows plus the loose
newest ones. Its cost grows with the conversation up to that many turns and then stays flat;
turns older than the scan are not searched, and the panel says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .embeddings import Embedder, dequantize, to_bytes
from .errors import ConfigError, LLMError
from .memory import EntityReport, RecalledTurn, RecallReport, TurnView, group_turns
from .records import MemorySettings
from .store_api import TranscriptStore
from .tokens import TokenCounter

if TYPE_CHECKING:
    import numpy as np

RECALL_SCAN_TURNS = 2_000  # stored turn vectors one recall compares, newest first
MISSED_SHOWN = 3  # best turns under the minimum score, shown so the threshold can be understood
TURN_TEXT_CHARS = 2_000  # of each side of a turn, embedded


def turn_text(turn: TurnView) -> str:
    """What is embedded for a turn: the user's message and the reply that counts."""
    parts = []
    if turn.user is not None:
        parts.append(turn.user.content[:TURN_TEXT_CHARS])
    if turn.reply is not None:
        parts.append(turn.reply.content[:TURN_TEXT_CHARS])
    return "\n".join(parts)


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as a whole word, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE) is not None


@dataclass
class LongTermMemory:
    """Recall and entities for one conversation, with the new message (or a draft) as the query."""

    store: TranscriptStore
    embedder: Embedder | None
    counter: TokenCounter
    user_id: str
    conversation_id: int
    query: str = ""
    _query_vector: np.ndarray | None = field(default=None, init=False, repr=False)

    # -- indexing -------------------------------------------------------------------------------

    def index(self, through_turn: int) -> int:
        """Embed the turns a recall can reach that have no vector yet; returns how many were stored."""
        if self.embedder is None or through_turn < 1:
            return 0
        name = self.embedder.name
        newest = self.store.vector_watermark(self.user_id, self.conversation_id, name)
        start = max(newest + 1, through_turn - RECALL_SCAN_TURNS + 1, 1)
        if start > through_turn:
            return 0
        turns = [
            t
            for t in group_turns(
                self.store.turns_between(self.user_id, self.conversation_id, start, through_turn), self.counter
            )
            if t.user is not None
        ]
        if not turns:
            return 0
        vectors = self.embedder.embed([turn_text(t) for t in turns])
        return self.store.add_turn_vectors(
            self.user_id, self.conversation_id, name, [(t.number, to_bytes(v)) for t, v in zip(turns, vectors)]
        )

    # -- recall -----------------------------------------------------------------------------------

    def recall(self, settings: MemorySettings, *, before_turn: int) -> RecallReport:
        """The top-k stored turns before `before_turn` most similar to the query, above the minimum score."""
        import numpy as np  # loaded on first use: only retrieval memory needs it

        base: dict[str, Any] = dict(
            query=self.query,
            scope=settings.recall_scope,
            top_k=settings.recall_turns,
            min_score=settings.recall_min_score,
        )
        if self.embedder is None:
            return RecallReport(**base, searched=0, notes=("Recall is unavailable: no embedding model.",))
        if not self.query.strip():
            return RecallReport(
                **base,
                searched=0,
                notes=("Recall runs on your next message: type one under “Next request” to preview it.",),
            )
        if settings.recall_turns == 0:
            return RecallReport(**base, searched=0, notes=("Recall is set to 0 turns.",))
        try:
            query = self._embed_query()
        except (LLMError, ConfigError) as exc:
            return RecallReport(**base, searched=0, notes=(f"Recall skipped: {exc}",))
        scan = self.store.recent_vectors(
            self.user_id,
            self.embedder.name,
            conversation_id=self.conversation_id,
            before_turn=before_turn,
            all_conversations=settings.recall_scope == "all",
            limit=RECALL_SCAN_TURNS,
        )
        if not len(scan):
            return RecallReport(**base, searched=0, notes=("No older turn is indexed yet to recall from.",))
        scores = dequantize(scan.vectors) @ query
        order = np.argsort(-scores, kind="stable")[: settings.recall_turns + MISSED_SHOWN]
        picked = [int(i) for i in order[: settings.recall_turns] if scores[i] >= settings.recall_min_score]
        missed = tuple(
            (int(scan.conversation_ids[i]), int(scan.turns[i]), float(scores[i]))
            for i in order
            if scores[i] < settings.recall_min_score
        )[:MISSED_SHOWN]
        recalled = []
        titles: dict[int, str] = {}
        for rank, index in enumerate(picked, 1):
            owner, number = int(scan.conversation_ids[index]), int(scan.turns[index])
            turn = self._turn(owner, number)
            if turn is None:
                continue
            if owner not in titles:
                titles[owner] = self.store.get_conversation(self.user_id, owner).title
            recalled.append(
                RecalledTurn(owner, titles[owner], turn, float(scores[index]), rank, owner == self.conversation_id)
            )
        recalled.sort(key=lambda r: (not r.same_conversation, r.conversation_id, r.turn.number))
        searched = len(scan)
        notes = [
            f"Recall compared your message with {searched:,} stored turn{'s' if searched != 1 else ''}"
            f" ({'all your conversations' if settings.recall_scope == 'all' else 'this conversation'}) and "
            f"picked {len(recalled)}."
        ]
        if searched == RECALL_SCAN_TURNS:
            notes.append(f"Only the newest {RECALL_SCAN_TURNS:,} stored turns are searched; older ones are not.")
        return RecallReport(**base, searched=searched, recalled=tuple(recalled), missed=missed, notes=tuple(notes))

    def _embed_query(self) -> np.ndarray:
        if self._query_vector is None:
            assert self.embedder is not None
            self._query_vector = self.embedder.embed([self.query])[0]
        return self._query_vector

    def _turn(self, conversation_id: int, number: int) -> TurnView | None:
        turns = group_turns(self.store.turns_between(self.user_id, conversation_id, number, number), self.counter)
        return turns[0] if turns else None

    # -- entities -----------------------------------------------------------------------------------

    def entities(self) -> EntityReport:
        """The conversation's entities; those the query names are injected."""
        known = tuple(self.store.list_entities(self.user_id, self.conversation_id))
        if not known:
            return EntityReport(notes=("No entities yet: they are extracted after each turn.",))
        injected = tuple(e for e in known if mentions(self.query, e.name)) if self.query.strip() else ()
        if not self.query.strip():
            note = f"{len(known)} known; those your next message names will be injected."
        else:
            note = f"{len(injected)} of {len(known)} known entities are named in your message and injected."
        return EntityReport(known, injected, (note,))
