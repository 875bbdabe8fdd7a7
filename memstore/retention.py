"""Retention (off unless MEMORYLAB_RETENTION_DAYS is set): delete idle conversations and old ledger rows.

    python -m memstore.retention --days 30 --dry-run    # what would go, per user; nothing changes
    python -m memstore.retention --days 30              # delete it

The app runs it at start-up and then at most once a day when MEMORYLAB_RETENTION_DAYS is set.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from .config import Settings
from .errors import InvalidInput, MemoryLabError
from .records import Expired
from .sql_store import SqlStore

DAY_S = 24 * 3600.0
MAX_DAYS = 36_500


def cutoff(days: int, now: datetime | None = None) -> datetime:
    """The moment before which rows are expired."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"Retention is 1 to {MAX_DAYS:,} days.")
    return (now or datetime.now(UTC)) - timedelta(days=days)


class RetentionSchedule:
    """Runs retention when due (never more than once a day per app process); the app calls `due_run` per page."""

    def __init__(self, days: int, *, every_s: float = DAY_S):
        cutoff(days)  # checked once, up front
        self.days = days
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last_run: float | None = None
        self.last_report: list[Expired] = []

    def due_run(self, store: SqlStore) -> list[Expired] | None:
        """Delete what has expired if a day has passed since the last run (or none ran); None when not due."""
        with self._lock:
            now = time.monotonic()
            if self._last_run is not None and now - self._last_run < self.every_s:
                return None
            self._last_run = now
            self.last_report = store.delete_expired(cutoff(self.days))
            return self.last_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memstore.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, required=True, help="delete what has been idle longer than this")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        store = SqlStore.open(settings.database_url, limits=settings.limits)
        try:
            moment = cutoff(args.days)
            report = store.expired(moment) if args.dry_run else store.delete_expired(moment)
        finally:
            store.close()
    except MemoryLabError as exc:
        print(f"Retention did not run: {exc}", file=sys.stderr)  # noqa: T201 - a command-line tool
        return 2
    verb = "would delete" if args.dry_run else "deleted"
    if not report:
        print(f"Nothing is older than {args.days:,} days.")  # noqa: T201
    for row in report:
        print(f"{row.user_id}: {verb} {row.sentence()}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
