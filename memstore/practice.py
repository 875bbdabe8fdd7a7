"""A practice lesson's check: once the learner did it in the app (a restart, a reload, a clear), read it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .lessons import Practice
from .sql_store import SqlStore


@dataclass(frozen=True)
class CheckResult:
    """Whether the database shows the step was done, and one sentence that says what it found."""

    passed: bool
    sentence: str


def check_practice(
    practice: Practice,
    store: SqlStore,
    user_id: str,
    *,
    process_started: datetime,
    temporary: SqlStore | None = None,
) -> CheckResult:
    """Read the database (and this browser session's temporary chats) for what the practice's steps leave behind."""
    phrase = practice.phrase
    if practice.check == "survives_restart":
        saved = store.find_messages(user_id, containing=phrase, role="user", limit=20)
        older = [m for m in saved if m.created_at < process_started]
        if older:
            return CheckResult(
                True,
                f"Found your message “{older[0].content[:120]}” in the database, written at "
                f"{older[0].created_at:%H:%M:%S} UTC, before this start of the app: it survived the restart.",
            )
        if saved:
            return CheckResult(
                False, "Your message is in the database, but it was written after this start: restart the app now."
            )
        return CheckResult(False, f"No saved message holds “{phrase}” yet: send it in a saved chat (step 1).")
    if practice.check == "temporary_gone":
        if temporary is not None and temporary.find_messages(user_id, containing=phrase, limit=1):
            return CheckResult(False, "This browser session still has the temporary chat: reload the page (step 3).")
        if store.find_messages(user_id, containing=phrase, limit=1):
            return CheckResult(False, "A saved chat holds it: it was sent in a saved chat, not a temporary one.")
        return CheckResult(
            True,
            f"No message holding “{phrase}” is in the database, and this browser session has no temporary chat "
            "with it: the memory went with the session.",
        )
    if practice.check == "preference_saved":
        wanted = phrase.lower()
        found = [p for p in store.list_preferences(user_id) if p.enabled and wanted in f"{p.key} {p.value}".lower()]
        if found:
            return CheckResult(
                True,
                f"Your preference “{found[0].key}: {found[0].value[:80]}” is saved and switched on: it is injected "
                "into the system prompt of every request, whatever the memory type.",
            )
        return CheckResult(False, f"No enabled preference mentions “{phrase}” yet: add it on the Preferences page.")
    if practice.check == "memory_cleared":
        cleared = [c for c in store.list_conversations(user_id, limit=200) if c.memory_cleared]
        if cleared:
            c = cleared[0]
            return CheckResult(
                True,
                f"“{c.title[:80]}” has its memory cleared: memory reads start at turn {c.memory_from_turn}, and its "
                f"{c.message_count} messages are all still stored.",
            )
        return CheckResult(False, "No conversation has its memory cleared yet: press Clear memory (step 3).")
    forgotten = store.find_messages(user_id, status="forgotten", limit=1)
    if forgotten:
        return CheckResult(
            True,
            f"Turn {forgotten[0].turn} has a forgotten message: its text is gone from the message, the ledger, the "
            "summaries and notes made from it, so no memory type can send it.",
        )
    return CheckResult(False, "No message is forgotten yet: use ⋯ → Forget this message… (step 2).")
