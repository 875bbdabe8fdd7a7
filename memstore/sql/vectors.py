"""Turn vectors for retrieval memory: loose rows sealed into blocks, read with a bound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput
from ..records import (
    VectorScan,
)
from ..schema import (
    utcnow,
)
from .base import SqlBase
from .rows import (
    MAX_VECTOR_SCAN,
    VECTOR_BLOCK_TURNS,
    vector_scan,
)


class VectorSql(SqlBase):
    """Stored turn vectors, per embedder; a recall reads at most MAX_VECTOR_SCAN of them."""

    # -- turn vectors (retrieval memory) ---------------------------------------------------------

    def add_turn_vectors(
        self, user_id: str, conversation_id: int, embedder: str, vectors: Sequence[tuple[int, bytes]]
    ) -> int:
        """Store embeddings of past turns, once each; every VECTOR_BLOCK_TURNS of them are sealed into one row."""
        if not vectors:
            return 0
        hot = self._hot
        stamp = hot.stamp(utcnow())
        with hot.transaction(write=True) as cursor:
            hot.owned(cursor, user_id, conversation_id, lock=True)  # one indexer per conversation at a time
            cursor.execute(
                hot.sql("SELECT MAX(last_turn) FROM turn_vector_blocks WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            sealed = cursor.fetchone()[0] or 0
            vectors = [(turn, vector) for turn, vector in vectors if turn > sealed]  # sealed runs are final
            if not vectors:
                return 0
            cursor.executemany(
                hot.sql(
                    "INSERT INTO turn_vectors (user_id, conversation_id, turn, embedder, vector, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, embedder, turn) DO NOTHING"
                ),
                [(user_id, conversation_id, turn, embedder, vector, stamp) for turn, vector in vectors],
            )
            added = max(cursor.rowcount, 0)  # psycopg and sqlite3 both sum an executemany's rows
            self._seal_vector_blocks(cursor, user_id, conversation_id, embedder, stamp)
            return added

    def _seal_vector_blocks(self, cursor: Any, user_id: str, conversation_id: int, embedder: str, stamp: Any) -> None:
        """Pack the oldest loose vectors into blocks of VECTOR_BLOCK_TURNS once that many have gathered."""
        import numpy as np  # loaded on first use: only retrieval memory needs it

        hot = self._hot
        cursor.execute(
            hot.sql("SELECT COUNT(*) FROM turn_vectors WHERE conversation_id = ? AND embedder = ?"),
            (conversation_id, embedder),
        )
        if cursor.fetchone()[0] < VECTOR_BLOCK_TURNS:
            return  # the usual case after a turn: count the loose rows (an index range), read none
        cursor.execute(
            hot.sql(
                "SELECT turn, vector FROM turn_vectors WHERE conversation_id = ? AND embedder = ? ORDER BY turn LIMIT ?"
            ),
            (conversation_id, embedder, MAX_VECTOR_SCAN + VECTOR_BLOCK_TURNS),
        )
        loose = cursor.fetchall()
        for start in range(0, len(loose) - VECTOR_BLOCK_TURNS + 1, VECTOR_BLOCK_TURNS):
            block = loose[start : start + VECTOR_BLOCK_TURNS]
            turns = np.array([turn for turn, _ in block], dtype=np.int32)
            cursor.execute(
                hot.sql(
                    "INSERT INTO turn_vector_blocks (user_id, conversation_id, embedder, first_turn, last_turn, turns, "
                    "vectors, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    user_id,
                    conversation_id,
                    embedder,
                    int(turns[0]),
                    int(turns[-1]),
                    turns.tobytes(),
                    b"".join(bytes(vector) for _, vector in block),
                    stamp,
                ),
            )
            cursor.execute(
                hot.sql(
                    "DELETE FROM turn_vectors WHERE conversation_id = ? AND embedder = ? AND turn >= ? AND turn <= ?"
                ),
                (conversation_id, embedder, int(turns[0]), int(turns[-1])),
            )

    def vector_watermark(self, user_id: str, conversation_id: int, embedder: str) -> int:
        """The newest turn of the conversation with a stored vector for this embedder (0 when none)."""
        hot = self._hot
        with hot.transaction(write=False, snapshot=True) as cursor:
            hot.owned(cursor, user_id, conversation_id)
            cursor.execute(
                hot.sql("SELECT MAX(turn) FROM turn_vectors WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            loose = cursor.fetchone()[0]
            cursor.execute(
                hot.sql("SELECT MAX(last_turn) FROM turn_vector_blocks WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            sealed = cursor.fetchone()[0]
        return max(loose or 0, sealed or 0)

    def recent_vectors(
        self,
        user_id: str,
        embedder: str,
        *,
        conversation_id: int,
        before_turn: int,
        all_conversations: bool,
        limit: int,
    ) -> VectorScan:
        """About the newest `limit` stored turn vectors: of this conversation before `before_turn`, or of all of
        the user's conversations (this one still only before `before_turn`). A few indexed, bounded reads."""
        if not 1 <= limit <= MAX_VECTOR_SCAN:
            raise InvalidInput(f"A vector scan reads 1 to {MAX_VECTOR_SCAN:,} turns.")
        hot = self._hot
        blocks_needed = limit // VECTOR_BLOCK_TURNS + 1
        own = "conversation_id = ? AND user_id = ? AND embedder = ?"
        others = "user_id = ? AND embedder = ? AND conversation_id <> ?"
        with hot.transaction(write=False, snapshot=True) as cursor:  # loose rows and blocks from one snapshot
            hot.owned(cursor, user_id, conversation_id)
            from_turn = hot.memory_from_turn(cursor, conversation_id)  # turns before a clear are not recalled
            cursor.execute(
                hot.sql(
                    f"SELECT conversation_id, turn, vector FROM turn_vectors WHERE {own} AND turn < ? AND turn >= ? "
                    "ORDER BY turn DESC LIMIT ?"
                ),
                (conversation_id, user_id, embedder, before_turn, from_turn, int(limit)),
            )
            loose = cursor.fetchall()
            cursor.execute(
                hot.sql(
                    f"SELECT conversation_id, turns, vectors FROM turn_vector_blocks WHERE {own} "
                    "AND first_turn < ? AND last_turn >= ? ORDER BY last_turn DESC LIMIT ?"
                ),
                (conversation_id, user_id, embedder, before_turn, from_turn, blocks_needed),
            )
            blocks = cursor.fetchall()
            if all_conversations:  # then the user's other conversations, most recently stored first
                cursor.execute(
                    hot.sql(
                        f"SELECT conversation_id, turn, vector FROM turn_vectors WHERE {others} "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (user_id, embedder, conversation_id, int(limit)),
                )
                loose += cursor.fetchall()
                cursor.execute(
                    hot.sql(
                        f"SELECT conversation_id, turns, vectors FROM turn_vector_blocks WHERE {others} "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (user_id, embedder, conversation_id, blocks_needed),
                )
                blocks += cursor.fetchall()
        return vector_scan(
            loose, blocks, conversation_id=conversation_id, before_turn=before_turn, from_turn=from_turn, limit=limit
        )
