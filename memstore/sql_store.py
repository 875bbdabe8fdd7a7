"""The persistent store: SQLAlchemy over SQLite or PostgreSQL, one transaction per unit of work.

One class for callers, one file per concern behind it (memstore/sql/): the transcript, the ledger,
turn vectors, entity notes, preferences and forgetting. The statements every turn runs are in sql/hotpath.py.
"""

from __future__ import annotations

from .sql.entities import EntitySql
from .sql.flags import FlagSql
from .sql.forgetting import ForgetSql
from .sql.ledger import LedgerSql
from .sql.preferences import PreferenceSql
from .sql.transcript import TranscriptSql
from .sql.vectors import VectorSql


class SqlStore(TranscriptSql, LedgerSql, VectorSql, EntitySql, PreferenceSql, ForgetSql, FlagSql):
    """Conversations, messages, summaries, preferences and the ledger in one SQL database.

    `SqlStore.open(url)` for a SQLite file or PostgreSQL; `SqlStore.in_memory()` for a temporary chat.
    """
